"""The built-in metrics (AUC, UAUC, NDCG, GAUC, LogLoss), registered through the same hook as a
plugin's own: their definitions live in ``collm_bench.records.metrics``."""
from __future__ import annotations

from collm_bench import hookimpl
from collm_bench.records.metrics import builtin_metrics


@hookimpl
def register_metrics(register):
    for spec in builtin_metrics():
        register(spec)
