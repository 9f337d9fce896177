"""collm-bench: a benchmark suite for LLM-based recommendation around CoLLM.

The names below, and the modules listed in ``PUBLIC_MODULES``, are the public API that
plugins (built-in ones included) may use. Importing this package stays light: no torch.
"""
from __future__ import annotations

from collm_bench.components import BackboneSpec, DatasetSpec, EncoderSpec, MethodSpec, MetricSpec
from collm_bench.errors import DataError, UserError
from collm_bench.plugins import hookimpl

__version__ = "0.1.0"

PUBLIC_MODULES = (
    "collm_bench",
    "collm_bench.backbone",
    "collm_bench.components",
    "collm_bench.dataset_format",
    "collm_bench.datasets",
    "collm_bench.downloads",
    "collm_bench.encoder",
    "collm_bench.encoder_stage",
    "collm_bench.gguf_models",
    "collm_bench.errors",
    "collm_bench.history",
    "collm_bench.interactions",
    "collm_bench.llm",
    "collm_bench.llmrec",
    "collm_bench.methods",
    "collm_bench.metrics",
    "collm_bench.predictions",
    "collm_bench.progress",
    "collm_bench.prompts",
    "collm_bench.records",
    "collm_bench.run_record",
    "collm_bench.stage_options",
    "collm_bench.stages",
    "collm_bench.subsets",
    "collm_bench.testing",
    "collm_bench.tuning",
)

__all__ = [
    "BackboneSpec", "DataError", "DatasetSpec", "EncoderSpec", "MethodSpec", "MetricSpec", "UserError",
    "hookimpl", "__version__", "PUBLIC_MODULES",
]
