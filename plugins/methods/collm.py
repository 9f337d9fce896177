"""``collm``: CoLLM (IEEE TKDE 2025). Step 1 tunes LoRA on text prompts (shared with
``tallrec`` through the stage cache); step 2 freezes it and trains the CIE MLP that maps the
collaborative encoder's user and item representations into the two ID placeholder tokens.
``--set strategy=t1|t2|t3`` selects the alternatives of Table V.
"""
from __future__ import annotations

from collm_bench import MethodSpec, hookimpl

from collm_bench.llmrec import CoLLMOptions, default_eval_sample, resolved


def run(context):
    from collm_bench_plugins.methods.llm_runs import run_collm

    return run_collm(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="collm", run=run, options=CoLLMOptions, encoder="mf", backbone="minilm",
        eval_sample=default_eval_sample, resolve_options=resolved,
        description="CoLLM: collaborative embeddings (CIE) in a LoRA-tuned LLM; rows for the encoder and TALLRec too",
    ))
