"""The MLflow logger (``--log-to mlflow``; ``pip install 'collm-bench[tracking]'``).

One MLflow run per record, in the experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
``collm-bench``) of ``$MLFLOW_TRACKING_URI`` (MLflow's default otherwise: ``sqlite:///mlflow.db``
in the current folder). It holds:
- params: method, encoder, backbone, dataset, seed, and every option (``options.lr``,
  ``encoder_options.dim``, ``backbone_options.dtype``), as the record's config gives them;
- metrics: each subset's metrics (``overall.auc``, ``warm.uauc``, ``cold.rows``), the 95%
  intervals (``overall.auc.low`` / ``.high``), timings (``train_seconds``, ``inference_seconds``,
  ``stage.llm-step1.seconds``), and each training stage's validation curve as a history
  (``llm-step1.valid_auc`` at each step; an encoder's own row: ``valid_auc`` at each epoch);
- tags: the run id, the predictions' sha256, each stage's key, the git commit, and whether the
  backbone had random weights; the record itself as the artifact ``record.json``.
A record already logged (same run id and predictions) is not logged twice.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from collm_bench.api.loggers import LoggerSpec
from collm_bench.api.registry import hookimpl

__version__ = "1"
EXPERIMENT = "collm-bench"


def _params(config: dict[str, Any]) -> dict[str, str]:
    out = {k: str(config.get(k)) for k in ("method", "encoder", "backbone", "dataset", "seed") if k in config}
    for table in ("options", "encoder_options", "backbone_options"):
        for key, value in (config.get(table) or {}).items():
            out[f"{table}.{key}"] = str(value)[:500]
    return out


def _metrics(record: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for subset, values in (record.get("metrics") or {}).items():
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{subset}.{name}"] = float(value)
    for name, bounds in (record.get("intervals") or {}).items():
        if isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds):
            out[f"overall.{name}.low"], out[f"overall.{name}.high"] = float(bounds[0]), float(bounds[1])
    timings = record.get("timings") or {}
    for name in ("train_seconds", "inference_seconds"):
        if isinstance(timings.get(name), (int, float)):
            out[name] = float(timings[name])
    for stage, values in (timings.get("stages") or {}).items():
        if isinstance(values, dict) and isinstance(values.get("seconds"), (int, float)):
            out[f"stage.{stage}.seconds"] = float(values["seconds"])
    return out


def _curves(record: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    """Each training block's validation curve: ``[step, auc]`` pairs (LLM stages) or one value
    per epoch (encoders)."""
    training = record.get("training") or {}
    blocks = {"": training, **{f"{k}.": v for k, v in training.items() if isinstance(v, dict)}}   # an encoder row: top level
    out = {}
    for block, values in blocks.items():
        curve = values.get("valid_curve") if isinstance(values, dict) else None
        if not isinstance(curve, list):
            continue
        points = [(int(p[0]), float(p[1])) if isinstance(p, list) else (i, float(p)) for i, p in enumerate(curve)]
        out[f"{block}valid_auc"] = points
    return out


def log_to_mlflow(record: dict[str, Any], run_dir: Path) -> str:
    import mlflow
    from mlflow.entities import Metric

    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run_id, digest = record["run_id"], record.get("predictions_sha256") or ""
    same = client.search_runs([experiment_id], filter_string=f"tags.`collm_bench.run_id` = '{run_id}' and "
                                                             f"tags.`collm_bench.predictions_sha256` = '{digest}'")
    if same:
        return f"already there (MLflow run {same[0].info.run_id}, experiment {experiment!r})"
    tags = {"collm_bench.run_id": run_id, "collm_bench.predictions_sha256": digest,
            "collm_bench.label": str(record.get("label")), "collm_bench.git_commit": str(record.get("git_commit")),
            "collm_bench.meaningless": str(bool(record.get("meaningless"))), "mlflow.runName": run_id}
    for stage, values in ((record.get("timings") or {}).get("stages") or {}).items():
        if isinstance(values, dict) and values.get("key"):
            tags[f"collm_bench.stage.{stage}"] = str(values["key"])
    run = client.create_run(experiment_id, tags=tags)
    rid = run.info.run_id
    try:
        import time

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in _metrics(record).items()]
        metrics += [Metric(name, value, now, step) for name, points in _curves(record).items() for step, value in points]
        from mlflow.entities import Param

        client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in _params(record["config"]).items()])
        client.log_dict(rid, record, "record.json")
    except BaseException:
        client.set_terminated(rid, status="FAILED")
        raise
    client.set_terminated(rid)
    return f"MLflow run {rid} (experiment {experiment!r}, {mlflow.get_tracking_uri()})"


@hookimpl
def register_loggers(register) -> None:
    register(LoggerSpec(name="mlflow", log=log_to_mlflow, requires="collm-bench[tracking]",
                        description="one MLflow run per record: options, metrics with intervals, timings, "
                                    "validation curves, stage keys ($MLFLOW_TRACKING_URI)"))
