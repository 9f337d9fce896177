"""``collm``: CoLLM (IEEE TKDE 2025). Step 1 tunes LoRA on text prompts (shared with
``tallrec`` through the stage cache); step 2 freezes it and trains the CIE MLP that maps the
collaborative encoder's user and item representations into the two ID placeholder tokens.
``--set strategy=t1|t2|t3`` selects the alternatives of Table V.
"""
from __future__ import annotations

import dataclasses

from collm_bench import Companion, MethodSpec, hookimpl
from collm_bench.api.components import options_dict
from collm_bench.llmrec import CoLLMOptions, LLMOptions, default_eval_sample, resolved


def run(context):
    from collm_bench_plugins.methods.llm_runs import run_collm

    return run_collm(context)


def companions(options: CoLLMOptions, encoder: str | None, backbone: str | None) -> list[Companion]:
    """The rows a run writes on the way (``llm_runs.run_collm``): its pretrained encoder's (not
    under T2, whose encoder starts fresh) and TALLRec's, which is its step 1 (not under T3, which
    has none), each with the options a direct run of it records."""
    rows = [] if options.strategy == "t2" else [Companion(encoder, encoder=encoder)]
    if options.strategy != "t3":
        own = {f.name for f in dataclasses.fields(LLMOptions)}
        rows.append(Companion("tallrec", {k: v for k, v in options_dict(options).items() if k in own},
                              backbone=backbone))
    return rows


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="collm", run=run, options=CoLLMOptions, encoder="mf", backbone="minilm",
        eval_sample=default_eval_sample, resolve_options=resolved, companions=companions,
        description="CoLLM: collaborative embeddings (CIE) in a LoRA-tuned LLM; rows for the encoder and TALLRec too",
    ))
