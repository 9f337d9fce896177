"""What the stage cache holds, and pruning it (``collm-bench cache list`` / ``cache prune``).

A stage cache grows with every configuration tried (on a GPU, each LoRA stage of a 7B model
is hundreds of MB), and interrupted runs leave two kinds of folders beside the stages:
``.<key>.resume`` (the checkpoint a rerun resumes from: worth keeping while the stage is
unfinished) and ``.<key>.partial-<pid>`` (a stage being written; garbage once its process is
gone). Pruning keeps what the records a user keeps name (their ``timings.stages`` keys) and
never touches what a live process is writing (nor, while one runs, stages no record names yet).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from collm_bench.errors import UserError
from collm_bench._util.paths import _alive  # the same liveness test the cache uses for its own leftovers
from collm_bench.cache.stages import STAGE_FILE

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

STAGE = "stage"              # a complete stage
CHECKPOINT = "checkpoint"    # the resume state of an unfinished stage
IN_PROGRESS = "in progress"  # being written by a live process
LEFTOVER = "leftover"        # a killed process's partial stage, a spent checkpoint, a damaged stage
UNKNOWN = "not a stage"      # never deleted


@dataclass(frozen=True)
class Entry:
    kind: str
    stage: str
    key: str
    path: Path
    size: int


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _classify(stage_dir: Path, path: Path) -> tuple[str, str]:
    """(kind, stage key) of one folder of a stage's directory."""
    name = path.name
    if not name.startswith("."):   # a stage, or something that is not ours (never deleted)
        return (STAGE if (path / STAGE_FILE).exists() else UNKNOWN), name
    if ".partial-" in name:
        key, pid = name[1:].split(".partial-", 1)
        return (IN_PROGRESS if pid.isdigit() and _alive(int(pid)) else LEFTOVER), key
    if name.endswith(".resume"):
        key = name[1:-len(".resume")]
        if (stage_dir / key / STAGE_FILE).exists():
            return LEFTOVER, key
        live = any(_classify(stage_dir, p)[0] == IN_PROGRESS for p in stage_dir.glob(f".{key}.partial-*"))
        return (IN_PROGRESS if live else CHECKPOINT), key   # a live run is training into it
    for mark in (".damaged-", ".pruned-"):   # set aside to be deleted, and not deleted
        if mark in name:
            return LEFTOVER, name[1:].split(mark, 1)[0]
    return UNKNOWN, name


def scan(root: Path) -> list[Entry]:
    """Every folder of the cache at ``root``, classified."""
    if not root.is_dir():
        return []
    out = []
    for stage_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(p for p in stage_dir.iterdir() if p.is_dir()):
            kind, key = _classify(stage_dir, path)
            out.append(Entry(kind, stage_dir.name, key, path, _size(path)))
    return out


def progress(entry: Entry) -> str | None:
    """How far the training behind a checkpoint got (step, best validation AUC, when it was
    saved), or None when the folder holds no readable training state."""
    from datetime import datetime

    from collm_bench.cache.checkpoints import STATE

    path = entry.path / STATE
    try:
        state = json.loads(path.read_text())["state"]
        step, result = int(state["step"]), state.get("result") or {}
        if not isinstance(result, dict):   # a damaged state: listed as unreadable, not a crash
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    saved = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    best = (f", best validation AUC {result['best_valid_auc']:.4f} at step {result['best_step']}"
            if isinstance(result.get("best_valid_auc"), (int, float)) and "best_step" in result else "")
    return f"step {step}{best}, saved {saved}"


def kept_keys(folders: list[Path]) -> set[str]:
    """The stage keys named by the records below ``folders`` (each must hold at least one)."""
    keys: set[str] = set()
    for folder in folders:
        records = sorted(Path(folder).rglob("record.json"))
        if not records:
            raise UserError(f"--keep-for {folder}: no record.json below it, so no stage would be kept; "
                            "name the folder that holds your runs")
        for record in records:
            try:
                stages = json.loads(record.read_text())["timings"]["stages"]
                keys.update(str(s["key"]) for s in stages.values() if "key" in s)   # inference has none
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"{record}: its stage keys cannot be read ({exc.__class__.__name__}); "
                                "fix or move the record before pruning") from None
    return keys


def doomed(entries: list[Entry], keep: set[str] | None, checkpoints: bool,
           leases: list[dict] | None = None) -> list[Entry]:
    """What a prune removes: leftovers always; stages no kept record names (when ``keep`` is
    given); checkpoints of unfinished stages only when asked; never what a live process writes,
    has used or may use (``leases``: the live runs' leases, ``collm_bench.cache.stages``)."""
    live = list(leases or [])
    if keep is not None and (live or any(e.kind == IN_PROGRESS for e in entries)):
        who = "; ".join(f"pid {lease['pid']}: {' '.join(map(str, lease.get('command') or []))[:80]}" for lease in live)
        raise UserError("a run is using the cache now" + (f" ({who})" if who else " (see collm-bench cache list)")
                        + ", and the stages it has used or will use are named by no record yet: prune with "
                        "--keep-for once it is done")
    held = {str(key) for lease in live for _, key in lease.get("stages") or []}
    out = []
    for entry in entries:
        if entry.key in held:
            continue
        if (entry.kind == LEFTOVER or (entry.kind == STAGE and keep is not None and entry.key not in keep)
                or (entry.kind == CHECKPOINT and checkpoints)):
            out.append(entry)
    return out


def remove(entries: list[Entry]) -> None:
    """Delete, moving each folder aside first so that no reader sees half a stage."""
    for entry in entries:
        aside = entry.path.parent / f".{entry.path.name.lstrip('.')}.pruned-{os.getpid()}"
        try:
            os.replace(entry.path, aside)
        except FileNotFoundError:
            continue
        shutil.rmtree(aside, ignore_errors=True)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
