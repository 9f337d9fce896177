"""``collm-bench score RUN_DIR``: a run's metrics recomputed from its predictions and compared
with its record (whose checksum of the predictions must match first); ``--update`` adds the
metrics registered since the record was written."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def rescore(run_dir: Path, update: bool, echo: Callable[..., None]) -> int:
    """Print the recomputed metrics and whether they match; the exit status (1: they differ)."""
    from collm_bench.records import store as records
    from collm_bench.records import predictions

    if not (run_dir / "record.json").exists():
        metrics = predictions.metrics_from_predictions(run_dir)
        echo(json.dumps(metrics, indent=2))
        echo(f"warning: {run_dir}: no record.json beside predictions.csv: nothing to verify against", err=True)
        return 0
    record = records.read_record(run_dir)
    checked = predictions.check_predictions_checksum(run_dir, record)   # refuses changed predictions
    frame = predictions.read_predictions(run_dir)
    metrics = predictions.metrics_of(frame)
    echo(json.dumps(metrics, indent=2))
    if not checked:
        echo("note: record.json carries no checksum of its predictions (written by an older "
             "collm-bench): only the metrics were compared", err=True)
    if not records.metrics_match(metrics, record.metrics):
        echo("metrics DIFFER from record.json", err=True)
        return 1
    echo("metrics match record.json")
    missing = records.missing_metrics(record.metrics, metrics)
    if not record.intervals:
        missing.append("intervals")
    if missing and update:
        merged = {subset: {**(metrics.get(subset) or {}), **values} for subset, values in record.metrics.items()}
        added = {"metrics": merged}
        if not record.intervals:
            added["intervals"] = predictions.intervals_of(frame)
        records.write_record(run_dir, {**record.data, **added})
        echo(f"added to record.json: {', '.join(missing)}")
    elif missing:
        echo(f"record.json lacks {', '.join(missing)} (registered since it was written): "
             f"collm-bench score --update {run_dir} adds them", err=True)
    return 0
