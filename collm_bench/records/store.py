"""Run records: ``record.json`` + ``predictions.csv`` in ``<out>/<run-id>/``.

Everything a leaderboard shows is read back from these files alone. Plumbing: this module moves
results around without computing them (``collm_bench.records.predictions`` writes, reads and scores the
predictions), so it is no part of any result's code identity (``collm_bench.cache.identity``).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from collm_bench.data.format import write_json
from collm_bench.errors import UserError
from collm_bench.records.predictions import check_predictions_checksum
from collm_bench.records.record import RunRecord, record_problem

__identity__ = "plumbing"

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Scored:
    """What the run computed from its saved predictions (``collm_bench.records.predictions``)."""

    metrics: dict[str, Any]
    intervals: dict[str, Any]
    predictions_sha256: str
    rows: int


def record_components(registry, method: str, encoder: str | None, backbone: str | None) -> list[tuple[str, str]]:
    """The registered components a row's code identity starts from: its own method (a companion
    row, CoLLM's MF or TALLRec row, was computed by the same stages as that method's own run,
    whose code covers them), encoder, backbone and every metric (computed for every row)."""
    base = (backbone or "").split(":", 1)[0]  # hf:<path> is the hf plugin's
    parts = [("method", method), ("encoder", encoder), ("backbone", base)]
    parts += [("metric", name) for name in registry.components["metric"]]
    return [(kind, name) for kind, name in parts if name and name in registry.components[kind]]


def record_roots(registry, components: Iterable[tuple[str, str]]) -> list[str]:
    """Where a record's code identity starts (``collm_bench.cache.identity``): the runner (the
    run's pipeline: plan, method, predictions, metrics) and the plugin module of each
    ``(kind, name)`` component."""
    from collm_bench import runner
    from collm_bench.encoders.stage import plugin_source_module

    return [runner.__name__] + [plugin_source_module(registry, kind, name) for kind, name in components]


def write_run(run_dir: Path, method: str, config: dict[str, Any], config_key: str, output, dataset,
              evaluation: dict[str, Any], scored: Scored, registry, produced_by: str | None) -> dict[str, Any]:
    """Build a row's ``record.json`` from what its run computed, write it, and return it. The one
    writer of records (``docs/protocol.md``, "Run records"); ``RunRecord`` is their one reader."""
    from collm_bench.cache.identity import dependencies

    plugins = {}
    backbone = (output.backbone or "").split(":", 1)[0]   # hf:<path> is the hf plugin's
    for kind, name in (("method", config["method"]), ("encoder", output.encoder), ("backbone", backbone),
                       ("dataset", dataset.name)):
        if name and name in registry.components[kind]:
            entry = registry.entry(kind, name)
            plugins[entry.plugin] = entry.version
    inference = output.inference_seconds
    parts = record_components(registry, config["method"], output.encoder, output.backbone)
    metrics, intervals, undefined = defined_numbers(scored.metrics, scored.intervals, registry)
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "method": method,
        "label": output.label,
        "encoder": output.encoder,
        "backbone": output.backbone,
        "meaningless": output.meaningless,
        "dataset": {"name": dataset.name, "manifest_sha256": dataset.sha256,
                    "path": str(dataset.path), "counts": dataset.manifest.get("counts")},
        "config": config,
        "config_key": config_key,
        "produced_by": produced_by,
        "seed": config["seed"],
        "evaluation": evaluation,
        "metrics": metrics,
        **({"undefined": undefined} if undefined else {}),
        "predictions_sha256": scored.predictions_sha256,
        "intervals": intervals,
        "training": output.details,
        "timings": {
            "stages": output.stages,
            "train_seconds": round(output.train_seconds, 3),
            "inference_seconds": round(inference, 3),
            "rows_per_second": round(scored.rows / inference, 1) if inference else None,
            # only where an LLM scored the rows (paper Table VI); CTRL names a backbone but DIN predicts
            "prompts_per_second": (output.stages.get("scoring") or {}).get("prompts_per_second"),
        },
        "peak_memory": peak_memory_mb(),
        "device": device_description(),
        "versions": versions(plugins),
        # the code that made it, so that a refresh knows when it is stale (collm_bench.cache.identity)
        "dependencies": {**dependencies(*record_roots(registry, parts)), "components": [list(p) for p in parts]},
        "git_commit": git_commit(),
        "date": now_iso(),
    }
    write_record(run_dir, record)
    if undefined:
        from collm_bench.progress import say

        by_reason: dict[str, list[str]] = {}
        for subset, names in undefined.items():
            for name, why in names.items():
                by_reason.setdefault(why, []).append(f"{subset} {name}")
        say(f"{run_dir.name}: undefined on its rows, written as null: "
            + "; ".join(f"{', '.join(where)} ({why})" for why, where in by_reason.items()))
    return record


def defined_numbers(metrics: dict[str, Any], intervals: dict[str, Any], registry
                    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, str]]]:
    """Metrics and intervals as a record holds them: a metric that is undefined on its rows (NaN
    from its computation: one label only, or no user with both) becomes null, with its reason in
    ``undefined[subset][name]``; an undefined interval bound makes the interval null, and an
    undefined resample is null in the stored samples. JSON has no NaN."""
    def bad(value: Any) -> bool:
        return isinstance(value, float) and not math.isfinite(value)

    specs = registry.components.get("metric", {}) if registry is not None else {}
    clean: dict[str, Any] = {}
    undefined: dict[str, dict[str, str]] = {}
    for subset, values in metrics.items():
        clean[subset] = {}
        for name, value in values.items():
            if value is None or bad(value):
                per_user = getattr(getattr(specs.get(name), "spec", None), "per_user", name in ("uauc", "gauc", "ndcg"))
                undefined.setdefault(subset, {})[name] = (
                    f"its computation gave {value}" if isinstance(value, float) and math.isinf(value) else
                    "no user has both labels and 2+ rows" if per_user else
                    "the rows hold one label only" if values.get("rows") else "no rows")
                value = None
            clean[subset][name] = value
    kept = dict(intervals)
    for name, bounds in intervals.items():
        if isinstance(bounds, (list, tuple)) and any(b is None or bad(b) for b in bounds):
            kept[name] = None
    if isinstance(intervals.get("samples"), dict):
        kept["samples"] = {name: [None if bad(v) else v for v in values] if isinstance(values, list) else values
                           for name, values in intervals["samples"].items()}
    return clean, kept, undefined


def read_record(run_dir: Path) -> RunRecord:
    """A run's ``record.json``, refused in one line naming the file when it is malformed."""
    path = Path(run_dir) / "record.json"
    if not path.exists():
        raise UserError(f"{path}: missing file")
    record, problem = _parse_record(path)
    if problem:
        raise UserError(f"{path}: {problem}")
    return record


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / "record.json"
    write_json(path, record)
    return path


def iter_records(root: Path, report: Callable[[str], None] | None = None) -> Iterator[tuple[Path, RunRecord]]:
    """Every sound ``record.json`` below ``root`` (sorted by path).

    A malformed record, or one whose ``predictions.csv`` no longer matches its checksum, is
    named on standard error (or to ``report``) and skipped, so that one bad file never hides
    the rest of a leaderboard. Records whose predictions are not at hand (committed records)
    or that carry no checksum are kept, and counted in one closing note as shown as recorded.
    """
    say = report or (lambda message: print(message, file=sys.stderr))
    absent = unchecked = total = 0
    for path in sorted(Path(root).rglob("record.json")):
        record, problem = _parse_record(path)
        here = (path.parent / "predictions.csv").exists()
        verified = False
        if problem is None and here:
            try:
                verified = check_predictions_checksum(path.parent, record)
            except UserError as exc:
                problem = str(exc)
        if problem:
            say(f"warning: {path}: skipped ({problem})")
            continue
        total += 1
        absent += not here
        unchecked += here and not verified
        yield path.parent, record
    for path in sorted(Path(root).rglob("predictions.csv")):
        if not (path.parent / "record.json").exists():
            say(f"warning: {path.parent}: predictions.csv without record.json, left out")
    if absent or unchecked:
        why = ([f"{absent} without predictions.csv here (committed records keep none)"] if absent else []) \
            + ([f"{unchecked} whose record has no predictions checksum"] if unchecked else [])
        say(f"note: {absent + unchecked} of {total} records below {root} are shown as recorded, not checked against "
            f"predictions: {'; '.join(why)}")


def mean_std(values: Iterable[Any], digits: int = 4, scale: float = 1.0, unit: str = "") -> str:
    """``mean`` or ``mean ± std`` (sample standard deviation) of the values present; ``-`` if none."""
    import statistics

    present = [float(v) * scale for v in values if v is not None]
    if not present:
        return "-"
    mean = statistics.fmean(present)
    if len(present) == 1:
        return f"{mean:.{digits}f}{unit}"
    return f"{mean:.{digits}f} ± {statistics.stdev(present):.{digits}f}{unit}"


def mean_of(values: Iterable[Any]) -> float | None:
    """The mean of the values present (``None`` skipped), or ``None`` if there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def with_interval(cell: str, bounds: Any) -> str:
    """A metric cell with its interval, ``0.6458 (0.6301-0.6612)``; the cell alone without one."""
    return f"{cell} ({bounds[0]:.4f}-{bounds[1]:.4f})" if bounds and cell != "-" else cell


def missing_metrics(recorded: dict[str, Any], computed: dict[str, Any]) -> list[str]:
    """Metrics ``computed`` holds that the record lacks (registered after it was written)."""
    return sorted({k for subset, values in computed.items() for k in values} -
                  {k for values in recorded.values() if isinstance(values, dict) for k in values})


def _parse_record(path: Path) -> tuple[RunRecord | None, str | None]:
    from collm_bench.data._checks import check_regular_file
    from collm_bench.errors import DataError

    try:
        check_regular_file(path, "record.json")   # a FIFO would hang the reader, a folder crash it
    except DataError as exc:
        return None, exc.problem
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({getattr(exc, 'strerror', None) or exc})"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    problem = record_problem(data)
    return (RunRecord(data) if problem is None else None), problem


def versions(plugins: dict[str, str] | None = None) -> dict[str, Any]:
    """Versions of the stack, read from package metadata (imports nothing heavy)."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("collm-bench", "torch", "transformers", "peft", "numpy", "pandas", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["plugins"] = dict(plugins or {})
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        result = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def peak_memory_mb() -> dict[str, float | None]:
    """Peak resident memory of this process, and peak CUDA memory where torch has used it."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cuda = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return {"cpu_rss_mb": round(rss_kb / 1024, 1), "cuda_mb": cuda}


def device_description() -> str:
    import os

    from collm_bench._util.distributed import world_size

    torch = sys.modules.get("torch")
    processes = f" x {world_size()} processes (torchrun)" if world_size() > 1 else ""
    if torch is not None and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}{processes}"
    threads = torch.get_num_threads() if torch else "?"
    return f"cpu ({os.cpu_count()} cores, {platform.machine()}, torch threads {threads}){processes}"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def metrics_match(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-6) -> bool:
    """True when two metric dicts agree to ``tol`` on every value both hold (a record written
    before a metric was registered lacks it: ``missing_metrics`` says which)."""
    for subset in set(a) | set(b):
        x, y = a.get(subset) or {}, b.get(subset) or {}
        for key in set(x) & set(y):
            u, v = x.get(key), y.get(key)
            if u is None or v is None:
                if u is not v:
                    return False
            elif not (float(u) == float(v) or abs(float(u) - float(v)) <= tol):
                return False
    return True
