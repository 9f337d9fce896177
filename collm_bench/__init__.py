"""collm-bench: a benchmark suite for LLM-based recommendation around CoLLM.

The public API that plugins (built-in ones included) may use: the names below, and every module
of the subpackages in ``PUBLIC_PACKAGES`` (and ``runner``, ``progress``, ``errors``) whose path
has no part starting with ``_``. Importing this package stays light: no torch.
"""
from __future__ import annotations

from collm_bench.api.components import BackboneSpec, Companion, DatasetSpec, EncoderSpec, MethodSpec, MetricSpec
from collm_bench.errors import DataError, UserError
from collm_bench.api.registry import hookimpl

__version__ = "0.1.0"

# The public subpackages: each re-exports its public names from its __init__. A module or
# package whose name starts with "_" is private (collm_bench._util, api._spec_checks).
PUBLIC_PACKAGES = ("api", "cache", "data", "encoders", "llm", "llmrec", "records", "reporting", "suites", "testing")

__all__ = [
    "BackboneSpec", "Companion", "DataError", "DatasetSpec", "EncoderSpec", "MethodSpec", "MetricSpec", "UserError",
    "hookimpl", "__version__", "PUBLIC_PACKAGES",
]
