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
from typing import Any, Iterator

import numpy as np

from collm_bench.dataset_format import atomic_path, write_json
from collm_bench.errors import UserError
from collm_bench.metrics import evaluate

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
    import pandas as pd

    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise UserError(f"{path}: missing file")
    frame = pd.read_csv(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def metrics_from_predictions(run_dir: Path) -> dict[str, Any]:
    frame = read_predictions(run_dir)
    return evaluate(frame["user"].to_numpy(), frame["label"].to_numpy(),
                    frame["score"].to_numpy(), frame["subset"].to_numpy())


def read_record(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "record.json"
    if not path.exists():
        raise UserError(f"{path}: missing file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg})") from None


def write_record(run_dir: Path, record: dict[str, Any]) -> Path:
    path = Path(run_dir) / "record.json"
    write_json(path, record)
    return path


def iter_records(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every ``record.json`` below ``root`` (sorted by path)."""
    for path in sorted(Path(root).rglob("record.json")):
        try:
            yield path.parent, json.loads(path.read_text())
        except json.JSONDecodeError:
            print(f"warning: {path}: not valid JSON, skipped", file=sys.stderr)


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
    """True when two metric dicts agree to ``tol`` on every value."""
    for subset in set(a) | set(b):
        x, y = a.get(subset) or {}, b.get(subset) or {}
        for key in set(x) | set(y):
            u, v = x.get(key), y.get(key)
            if u is None or v is None:
                if u is not v:
                    return False
            elif not np.isclose(float(u), float(v), atol=tol, rtol=0):
                return False
    return True
