"""``tiny-qwen2``: a random 2-layer Qwen2-shaped model (hidden 64) with a tokenizer built in code.

Like Qwen2's tokenizer, its tokenizer has no BOS and no unk token (the placeholder falls back
to <|endoftext|>). For tests and smoke runs: its results are labelled meaningless.
"""
from __future__ import annotations

from collm_bench import BackboneSpec, hookimpl
from collm_bench.llm.backbone import BackboneOptions


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench_plugins.backbones.tiny_models import load_tiny

    return load_tiny("qwen2", "tiny-qwen2", options, **overrides)


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="tiny-qwen2", load=load, options=BackboneOptions, kind="causal",
        description="Random tiny Qwen2 (2 layers, hidden 64), offline: tests and smoke runs, results meaningless",
    ))
