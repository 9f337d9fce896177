"""One run, top to bottom as the paper's pipeline:

dataset -> prepared split -> history -> encoder training -> scoring -> metrics -> record.

(The LLM stages of CoLLM plug in between scoring and training in a later step.)
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from collm_bench.components import options_dict, parse_options
from collm_bench.errors import UserError, unknown_name
from collm_bench.plugins import Registry, get_registry

@dataclass(frozen=True)
class RunRequest:
    method: str
    dataset: str = "ml-100k"
    seed: int = 0
    options: dict[str, str] = dataclasses.field(default_factory=dict)
    out: Path = Path("runs")
    data_dir: str | None = None


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: dict[str, Any]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_encoder_method(registry: Registry, method: str, options: dict[str, str]):
    """The encoder spec and validated options for an encoder used alone as a method."""
    if method not in registry.components["encoder"] and method not in registry.components["method"]:
        known = set(registry.components["encoder"]) | set(registry.components["method"])
        raise unknown_name("method", method, known)
    if method not in registry.components["encoder"]:
        raise UserError(f"method {method!r} is registered but runs in a later collm-bench stage; "
                        f"encoder methods available now: {', '.join(registry.names('encoder'))}")
    spec = registry.get("encoder", method)
    return spec, parse_options(spec.options, options, owner=f"encoder {method!r}")


def config_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def run(request: RunRequest, *, registry: Registry | None = None,
        progress: Callable[[str], None] = _say) -> RunResult:
    from collm_bench import records
    from collm_bench.datasets import resolve_dataset

    registry = registry or get_registry()
    # Validate every name and option before anything is loaded or built.
    spec, opts = resolve_encoder_method(registry, request.method, request.options)
    dataset = resolve_dataset(request.dataset, root=request.data_dir, registry=registry)

    config = {
        "method": request.method,
        "encoder": request.method,
        "backbone": None,
        "dataset": dataset.name,
        "dataset_sha256": dataset.sha256,
        "seed": request.seed,
        "options": options_dict(opts),
    }
    key = config_key(config)
    run_id = f"{dataset.name}__{request.method}__seed{request.seed}__{key}"
    run_dir = Path(request.out) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    progress(f"run {run_id}: {request.method} on {dataset.name} ({dataset.path})")

    from collm_bench.encoder import build_encoder, fit, predict, seed_everything, training_options
    from collm_bench.interactions import build_interactions

    started = time.perf_counter()
    data = build_interactions(dataset)
    prepare_seconds = time.perf_counter() - started

    seed_everything(request.seed)
    model = build_encoder(spec, opts, data)
    train_options = training_options(spec, opts)
    history_len = int(train_options.get("history_len", 0) or 0)
    result = fit(model, data, **train_options, seed=request.seed, progress=progress)

    test = data.rows("test")
    started = time.perf_counter()
    scores = predict(model, data, test, history_len=history_len)
    inference_seconds = time.perf_counter() - started

    records.write_predictions(run_dir, data.user_id[test], data.item_id[test], data.label[test],
                              scores, data.subset[test])
    # Metrics are computed from the saved predictions, so that record and file always agree.
    metrics = records.metrics_from_predictions(run_dir)
    entry = registry.entry("encoder", request.method)
    record = {
        "schema_version": records.SCHEMA_VERSION,
        "run_id": run_id,
        "method": request.method,
        "encoder": request.method,
        "backbone": None,
        "dataset": {"name": dataset.name, "manifest_sha256": dataset.sha256, "path": str(dataset.path),
                    "counts": dataset.manifest.get("counts")},
        "config": config,
        "config_key": key,
        "seed": request.seed,
        "evaluation": {"split": "test", "rows": int(len(test)), "total_rows": int(len(test)), "sampled": False},
        "metrics": metrics,
        "training": {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                     "best_valid_auc": round(result.best_valid_auc, 6),
                     "valid_curve": [round(v, 6) for v in result.valid_curve]},
        "timings": {
            "stages": {"prepare_data": round(prepare_seconds, 3),
                       "train_encoder": round(result.train_seconds, 3),
                       "inference": round(inference_seconds, 3)},
            "train_seconds": round(result.train_seconds, 3),
            "inference_seconds": round(inference_seconds, 3),
            "train_samples_per_second": round(result.samples_per_second, 1),
            "inference_rows_per_second": round(len(test) / inference_seconds, 1) if inference_seconds else None,
        },
        "peak_memory": records.peak_memory_mb(),
        "device": records.device_description(),
        "versions": records.versions({entry.plugin: entry.version}),
        "git_commit": records.git_commit(),
        "date": records.now_iso(),
    }
    records.write_record(run_dir, record)
    return RunResult(run_dir, record)
