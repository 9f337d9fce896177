"""Run records and what they hold: predictions written and read back, metrics and their
bootstrap intervals, the record built and written (``store``), read and checked (``record``).

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "defined_numbers": "collm_bench.records.store",
    "rescore": "collm_bench.records.rescore",
    "LEVEL": "collm_bench.records.bootstrap",
    "PREDICTION_COLUMNS": "collm_bench.records.predictions",
    "RESAMPLES": "collm_bench.records.bootstrap",
    "RecordProblem": "collm_bench.records.record",
    "Resamples": "collm_bench.records.bootstrap",
    "RunRecord": "collm_bench.records.record",
    "SCHEMA_VERSION": "collm_bench.records.store",
    "SUBSETS": "collm_bench.records.metrics",
    "Scored": "collm_bench.records.store",
    "UNIT_METRICS": "collm_bench.records.record",
    "USER_ORDER": "collm_bench.records.bootstrap",
    "auc": "collm_bench.records.metrics",
    "auc_samples": "collm_bench.records.bootstrap",
    "builtin_metrics": "collm_bench.records.metrics",
    "check_predictions_checksum": "collm_bench.records.predictions",
    "device_description": "collm_bench.records.store",
    "draw": "collm_bench.records.bootstrap",
    "evaluate": "collm_bench.records.metrics",
    "evaluated_rows": "collm_bench.records.record",
    "git_commit": "collm_bench.records.store",
    "interval": "collm_bench.records.bootstrap",
    "intervals": "collm_bench.records.bootstrap",
    "intervals_of": "collm_bench.records.predictions",
    "iter_records": "collm_bench.records.store",
    "log_loss": "collm_bench.records.metrics",
    "mean_of": "collm_bench.records.store",
    "mean_std": "collm_bench.records.store",
    "metrics_from_predictions": "collm_bench.records.predictions",
    "metrics_match": "collm_bench.records.store",
    "metrics_of": "collm_bench.records.predictions",
    "missing_metrics": "collm_bench.records.store",
    "ndcg_one": "collm_bench.records.metrics",
    "now_iso": "collm_bench.records.store",
    "paired_difference": "collm_bench.records.bootstrap",
    "paired_from_samples": "collm_bench.records.bootstrap",
    "peak_memory_mb": "collm_bench.records.store",
    "per_user": "collm_bench.records.metrics",
    "predictions_sha256": "collm_bench.records.predictions",
    "read_predictions": "collm_bench.records.predictions",
    "read_record": "collm_bench.records.store",
    "record_components": "collm_bench.records.store",
    "record_problem": "collm_bench.records.record",
    "record_roots": "collm_bench.records.store",
    "registered_metrics": "collm_bench.records.metrics",
    "uauc_samples": "collm_bench.records.bootstrap",
    "unique_runs": "collm_bench.records.record",
    "verified_predictions": "collm_bench.records.predictions",
    "versions": "collm_bench.records.store",
    "with_interval": "collm_bench.records.store",
    "write_predictions": "collm_bench.records.predictions",
    "write_record": "collm_bench.records.store",
    "write_run": "collm_bench.records.store",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
