"""``icl``: in-context learning, the untuned LLM asked with the text prompt (paper [17]).

No training: the causal backbone reads the TALLRec-style text prompt and the score is the
log-odds of "Yes" against "No" at the last position, ``logit(Yes) - logit(No)``: it is what
TALLRec's softmax over the two answers ranks by (sigmoid of it = that softmax's P(Yes)), it
stays a logit like every other row's score (ensembles average like with like), and unlike
the raw Yes logit it cancels what an untuned model's logits share at a position (their
overall level, which moves from prompt to prompt and says nothing of the answer).
``--set readout=yes`` gives CoLLM's raw Yes logit instead. A backbone without an LM head
(``minilm``) has no answer to read: the method refuses it before loading any weights.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.components import option

from collm_bench.llmrec import PRESETS, PROMPT, SCORING, default_eval_sample, resolved

READOUTS = ("yes-no", "yes")


@dataclass(frozen=True)
class ICLOptions:
    """Scoring options only (None: the preset's value, as the tuned LLM methods)."""

    preset: str = option("auto", choices=("auto", *PRESETS), help="history length and test sample")
    history_titles: int | None = option(None, ge=0, help="last N positive titles in the prompt",
                                        groups=(PROMPT,))
    eval_sample: int | None = option(None, ge=1, help="default test sample in rows, whole users (none: all)")
    int8_inference: bool | None = option(None, help="score with an int8 dynamic-quantized copy (CPU)",
                                         groups=(SCORING,))
    readout: str = option("yes-no", choices=READOUTS, help="yes-no: logit(Yes) - logit(No); yes: raw Yes logit",
                          groups=(SCORING,))
    score_batch_size: int = option(64, ge=1, help="prompts per scoring batch", groups=(SCORING,))


def run(context):
    from collm_bench_plugins.methods.llm_baselines import run_icl

    return run_icl(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="icl", run=run, options=ICLOptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="ICL: the untuned causal LLM asked with the text prompt, logit(Yes) - logit(No); needs a causal backbone",
    ))
