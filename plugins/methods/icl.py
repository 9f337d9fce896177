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

import dataclasses
import typing
from typing import Any

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option
from collm_bench.llmrec import SCORING, LLMOptions, default_eval_sample, resolved

READOUTS = ("yes-no", "yes")


def _llm_options(*names: str) -> list[tuple[str, Any, Any]]:
    """LLMOptions' own definitions of the named options: one definition, not a copy."""
    hints = typing.get_type_hints(LLMOptions)
    fields = {f.name: f for f in dataclasses.fields(LLMOptions)}
    return [(n, hints[n], dataclasses.field(default=fields[n].default, metadata=fields[n].metadata)) for n in names]


# Scoring options only (None: the preset's value, as the tuned LLM methods): those of LLMOptions
# that scoring reads, and ICL's own readout, Yes minus No unless set.
ICLOptions = dataclasses.make_dataclass("ICLOptions", [
    *_llm_options("preset", "history_titles", "eval_sample", "int8_inference", "score_batch_size"),
    ("readout", str, option("yes-no", choices=READOUTS, groups=(SCORING,),
                            help="yes-no: logit(Yes) - logit(No); yes: raw Yes logit")),
], frozen=True, namespace={"__module__": __name__})


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
