"""Run records: ``record.json`` + ``predictions.csv`` in ``<out>/<run-id>/``.

Everything a leaderboard shows is read back from these files alone.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from collm_bench.dataset_format import atomic_path, sha256_file, write_json
from collm_bench.errors import UserError
from collm_bench.metrics import evaluate
from collm_bench.run_record import RunRecord, record_problem

SCHEMA_VERSION = 1
PREDICTION_COLUMNS = ("user", "item", "label", "score", "subset")


def write_predictions(run_dir: Path, user, item, label, score, subset) -> Path:
    import pandas as pd

    path = Path(run_dir) / "predictions.csv"
    frame = pd.DataFrame({"user": user, "item": item, "label": label, "score": score, "subset": subset})
    with atomic_path(path) as tmp:
        # repr-exact floats: recomputed metrics must equal the recorded ones.
        frame.to_csv(tmp, index=False, float_format="%.9g")
    return path


def read_predictions(run_dir: Path):
    """A run's ``predictions.csv``, checked for its columns, binary labels and finite scores."""
    import pandas as pd

    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise UserError(f"{path}: missing file")
    try:
        # ids as written: "01" is not 1, "NA" is a name (the dataset's ids, kept as text)
        frame = pd.read_csv(path, dtype={"user": str, "item": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(score).all():
        raise UserError(f"{path}: non-numeric or non-finite score on data row {int(np.argmin(np.isfinite(score))) + 1}")
    if not frame["label"].isin([0, 1]).all():
        raise UserError(f"{path}: label must be 0 or 1 (data row {int((~frame['label'].isin([0, 1])).idxmax()) + 1})")
    return frame


def metrics_from_predictions(run_dir: Path) -> dict[str, Any]:
    return metrics_of(read_predictions(run_dir))


def metrics_of(frame) -> dict[str, Any]:
    return evaluate(frame["user"].to_numpy(), frame["label"].to_numpy(),
                    frame["score"].to_numpy(), frame["subset"].to_numpy())


def intervals_of(frame) -> dict[str, Any]:
    """95% intervals of AUC and UAUC by a seeded bootstrap over users (``collm_bench.bootstrap``)."""
    from collm_bench.bootstrap import intervals

    return intervals(frame["user"].to_numpy(), frame["label"].to_numpy(), frame["score"].to_numpy())


def predictions_sha256(run_dir: Path) -> str:
    return sha256_file(Path(run_dir) / "predictions.csv")


def check_predictions_checksum(run_dir: Path, record: RunRecord) -> bool:
    """True when the record's ``predictions_sha256`` matches ``predictions.csv``; False when the
    record carries none (written by an older collm-bench); a one-line ``UserError`` otherwise."""
    expected = record.predictions_sha256
    if expected is None:
        return False
    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise UserError(f"{path}: missing file (record.json states its checksum)")
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(f"{path}: sha256 {actual[:12]}... differs from {str(expected)[:12]}... in record.json: "
                        "the predictions changed after the run; rerun it")
    return True


def verified_predictions(run_dir: Path, record: RunRecord | None = None):
    """A run's predictions, refused in one line unless they are the ones its record was made from.

    The record's ``predictions_sha256`` must match the file. A record written before records
    carried that checksum is checked the only way left: its metrics must equal those
    recomputed from the file.
    """
    record = read_record(run_dir) if record is None else record
    checked = check_predictions_checksum(run_dir, record)
    frame = read_predictions(run_dir)
    if not checked and not metrics_match(metrics_of(frame), record.metrics):
        raise UserError(f"{Path(run_dir) / 'predictions.csv'}: metrics recomputed from it differ from "
                        "record.json (a record without a predictions checksum); rerun it")
    return frame


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
    or that carry no checksum are kept, and counted in one closing note as not verifiable here.
    """
    say = report or (lambda message: print(message, file=sys.stderr))
    unverifiable = total = 0
    for path in sorted(Path(root).rglob("record.json")):
        record, problem = _parse_record(path)
        if problem is None and (path.parent / "predictions.csv").exists():
            try:
                verified = check_predictions_checksum(path.parent, record)
            except UserError as exc:
                problem = str(exc)
        else:
            verified = False
        if problem:
            say(f"warning: {path}: skipped ({problem})")
            continue
        total += 1
        unverifiable += not verified
        yield path.parent, record
    for path in sorted(Path(root).rglob("predictions.csv")):
        if not (path.parent / "record.json").exists():
            say(f"warning: {path.parent}: predictions.csv without record.json, left out")
    if unverifiable:
        say(f"note: {unverifiable} of {total} records below {root} are not verifiable here (no predictions.csv "
            "beside them, as in committed records, or no checksum in the record): shown as recorded")


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

    from collm_bench.distributed import world_size

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
            elif not np.isclose(float(u), float(v), atol=tol, rtol=0):
                return False
    return True
