"""``tiny-llama``: a random 2-layer Llama-shaped model (hidden 64) with a tokenizer built in code.

For tests and smoke runs: its results are labelled meaningless. Nothing is downloaded.
"""
from __future__ import annotations

from collm_bench import BackboneSpec, hookimpl
from collm_bench.llm.backbone import BackboneOptions


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench_plugins.backbones.tiny_models import load_tiny

    return load_tiny("llama", "tiny-llama", options, **overrides)


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="tiny-llama", load=load, options=BackboneOptions, kind="causal",
        description="Random tiny Llama (2 layers, hidden 64), offline: tests and smoke runs, results meaningless",
    ))
