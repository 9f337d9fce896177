"""What a run's evaluation rows are, kept between processes, so that planning a run (a suite's
``--dry-run`` above all) names it without reading its dataset.

An entry is the ``evaluation`` of ``collm_bench.api.methods.evaluation_rows`` (what the run's
config says of its rows: how many, and for a sample its users and the digest of the rows chosen),
as JSON under ``<stage cache>/.evaluation/``, keyed by the dataset's digest, the sample asked for
and the identity of the code that reads the data and draws the rows (``ROOTS``, followed as a
stage's code is). A run draws its rows again from the loaded data and refuses an entry that says
otherwise (``collm_bench.runner.Plan.eval_rows``), so an entry can at worst make a plan fail,
never a record wrong. Nothing is pickled.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__identity__ = "plumbing"

FOLDER = ".evaluation"
ROOTS = ("collm_bench.api.methods:evaluation_rows", "collm_bench.data.interactions:build_interactions",
         "collm_bench.data.format:load_prepared")


def entry_path(cache_root: Path, dataset_sha256: str, sample_rows: int | None) -> Path:
    """Where the entry of this dataset and sample lives (its name holds the code's identity)."""
    from collm_bench.cache.stages import code_identity

    key = {"dataset": dataset_sha256, "sample_rows": sample_rows, "code": code_identity(*ROOTS)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return Path(cache_root) / FOLDER / f"{digest}.json"


def recall(path: Path) -> dict[str, Any] | None:
    """The kept evaluation, or None (missing, unreadable or of another shape: a miss)."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(kept, dict) and isinstance(kept.get("rows"), int) and isinstance(kept.get("sampled"), bool)
    return kept if ok else None


def keep(path: Path, evaluation: dict[str, Any]) -> None:
    """Keep ``evaluation`` (atomically); a read-only cache keeps nothing."""
    from collm_bench.data.format import atomic_path
    from collm_bench.errors import UserError

    try:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(evaluation, sort_keys=True))
    except (OSError, UserError):   # atomic_path names an unwritable file by a UserError
        return


def forget(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
