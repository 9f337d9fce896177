"""``tallrec``: the LLM tuned with LoRA on text-only prompts (TALLRec; CoLLM's step 1).

Scored as CoLLM scores (raw Yes logit, BCE), not with TALLRec's own LM loss and softmax
(docs/protocol.md, "Scores and losses"), so that its row and CoLLM's differ only by the CIE.
"""
from __future__ import annotations

from collm_bench import MethodSpec, hookimpl

from collm_bench.llmrec import LLMOptions, default_eval_sample, resolved


def run(context):
    from collm_bench_plugins.methods.llm_runs import run_tallrec

    return run_tallrec(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="tallrec", run=run, options=LLMOptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="TALLRec: LoRA-tuned LLM on text prompts (CoLLM's step 1)",
    ))
