"""``hf``: any Hugging Face model, named on the command line as ``--backbone hf:<id-or-path>``.

The CLI turns ``hf:<id-or-path>`` into this backbone with ``path=<id-or-path>``. Models with an
LM head (``*ForCausalLM`` architectures) are scored by the logit of "Yes", others (BERT-style
encoders) by a learned head on the first token (``collm_bench.llm.backbone.detect_kind``).
"""
from __future__ import annotations

from collm_bench import BackboneSpec, UserError, hookimpl
from collm_bench.llm.backbone import BackboneOptions


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench.llm.backbone import load_hf_backbone

    options = options or BackboneOptions(**overrides)
    if not options.path:
        raise UserError("backbone hf needs a model: --backbone hf:<hub-id-or-local-path>")
    return load_hf_backbone(options.path, name=f"hf:{options.path}", options=options,
                            description=f"Hugging Face model {options.path}")


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="hf", load=load, options=BackboneOptions,
        description="Any Hugging Face model: --backbone hf:<hub-id-or-local-path>",
    ))
