"""``qwen2-1.5b``: Qwen2-1.5B (``Qwen/Qwen2-1.5B``; ``--backbone-path`` overrides)."""
from __future__ import annotations

from collm_bench import BackboneSpec, hookimpl
from collm_bench.llm.backbone import BackboneOptions

HUB_ID = "Qwen/Qwen2-1.5B"


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench.llm.backbone import load_hf_backbone

    return load_hf_backbone(HUB_ID, name="qwen2-1.5b", kind="causal", options=options or BackboneOptions(**overrides),
                            description="Qwen2-1.5B (causal; the preset's readout scores it)")


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="qwen2-1.5b", load=load, options=BackboneOptions, kind="causal",
        description=f"Qwen2-1.5B ({HUB_ID}; --backbone-path overrides)",
    ))
