"""``llara``: LLaRA (Liao et al., "LLaRA: Large Language-Recommendation Assistant", SIGIR 2024)
as a collm-bench method, written only against collm-bench's public API.

What LLaRA does: each item in the prompt is its title followed by one token whose input
embedding is the item's SASRec embedding, mapped into the LLM's token space by a two-layer MLP
(the "hybrid" item representation). The LLM (LoRA) and the projector are tuned together with a
curriculum: at training step t of T a batch uses the hybrid prompt with probability t / T and
otherwise the same prompt read as text (the slot keeps its placeholder token, and the projector
gets no gradient), so training moves from text-only to hybrid prompts. Evaluation always uses
the hybrid prompt. SASRec is pretrained first and frozen.

What differs here, and why: the original asks the model to pick the next item among 20
candidates and generates its title; collm-bench's task is CoLLM's Yes/No on one (user, item)
pair, so the prompt is CoLLM's text template with a hybrid token after every history title and
after the target title, scored and trained as TALLRec and CoLLM are (the Yes logit, BCE). LoRA
goes where the backbone's other LLM methods put it (e.g. q_proj/v_proj), not into every linear
layer as the authors' code, so that this row differs from TALLRec's by the hybrid tokens and
the curriculum alone. The history holds the last ``history_titles`` positives (the paper: the
last 10 interactions).
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option
from collm_bench.llmrec import LLMOptions, default_eval_sample, resolved

HYBRID = "hybrid"  # option group: what the joint tuning stage reads beyond step 1's groups
CURRICULA = ("linear", "none")


@dataclass(frozen=True)
class LLaRAOptions(LLMOptions):
    """TALLRec's options (the tuning budget is step 1's: ``lr``, ``max_steps``) plus LLaRA's."""

    curriculum: str = option("linear", choices=CURRICULA, groups=(HYBRID,),
                             help="linear: hybrid prompts with probability step / max_steps (LLaRA); none: always")


def run(context):
    from collm_bench_llara_run import run_llara

    return run_llara(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="llara", run=run, options=LLaRAOptions, encoder="sasrec", backbone="minilm",
        eval_sample=default_eval_sample, resolve_options=resolved,
        description="LLaRA (SIGIR 2024, adapted to Yes/No): title + projected SASRec token per item, "
                    "text-to-hybrid curriculum",
    ))
