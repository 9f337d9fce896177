"""``vicuna7b``: Vicuna-7B, the backbone of the CoLLM paper.

The default hub id is ``lmsys/vicuna-7b-v1.3`` (``HUB_ID``), a Vicuna-7B that loads directly
from the hub (the authors' README builds Vicuna from delta weights following MiniGPT-4); point
``--backbone-path`` at a local folder or another hub id to use other weights. Llama's tokenizer
needs ``sentencepiece`` where the weights ship no ``tokenizer.json``. 8-bit/4-bit loading:
``--backbone-set quantization=8bit`` (bitsandbytes, CUDA).
"""
from __future__ import annotations

from collm_bench import BackboneSpec, hookimpl
from collm_bench.llm.backbone import BackboneOptions

HUB_ID = "lmsys/vicuna-7b-v1.3"


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench.llm.backbone import load_hf_backbone

    return load_hf_backbone(HUB_ID, name="vicuna7b", kind="causal", options=options or BackboneOptions(**overrides),
                            description="Vicuna-7B (Llama; the preset's readout scores it)")


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="vicuna7b", load=load, options=BackboneOptions, kind="causal",
        description=f"Vicuna-7B ({HUB_ID}; --backbone-path overrides), the paper's backbone: a GPU one",
    ))
