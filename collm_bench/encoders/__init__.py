"""Collaborative encoders: building and training one (``training``), and pretraining as a
cached stage shared by the encoder's own row and CoLLM (``stage``).

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "TrainResult": "collm_bench.encoders.training",
    "WEIGHTS": "collm_bench.encoders.stage",
    "build_encoder": "collm_bench.encoders.training",
    "encoder_stage_inputs": "collm_bench.encoders.stage",
    "fit": "collm_bench.encoders.training",
    "make_batch": "collm_bench.encoders.training",
    "plugin_source_module": "collm_bench.encoders.stage",
    "predict": "collm_bench.encoders.training",
    "pretrained_encoder": "collm_bench.encoders.stage",
    "encoder_row": "collm_bench.encoders.stage",
    "run_encoder_method": "collm_bench.encoders.stage",
    "seed_everything": "collm_bench.encoders.training",
    "training_options": "collm_bench.encoders.training",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
