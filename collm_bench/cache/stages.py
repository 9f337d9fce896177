"""The stage cache: each pipeline stage's output stored under a key that hashes its inputs.

A stage's inputs are everything its output depends on: dataset manifest digest, the stage's
options, upstream stage keys, seed, and the versions and source fingerprints of the code that
computes it (``code_identity``). A rerun reuses what exists; an interrupted run resumes at the first
missing stage. A stage directory appears only complete (built under a temp name, renamed),
and is reused only when its files match the checksums in its ``stage.json``.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from collm_bench._util import distributed
from collm_bench.cache._dirs import cache_dir
from collm_bench.cache._local_weights import local_weights
from collm_bench.data.format import sha256_file, umask, write_json
from collm_bench._util.paths import (as_write_error, check_name, inside, is_safe_relative, remove_dead_partials,
                               write_error)

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

STAGE_FILE = "stage.json"
_CHECKPOINTS: contextvars.ContextVar[Path | None] = contextvars.ContextVar("collm_bench_checkpoints", default=None)
_EARLIER: contextvars.ContextVar[float] = contextvars.ContextVar("collm_bench_earlier_seconds", default=0.0)


def checkpoint_dir() -> Path | None:
    """Where the stage now being computed may keep its training checkpoint (None outside a
    stage, and under torchrun). It survives an interruption, keyed like the stage, so that a
    rerun resumes inside the stage; it is removed once the stage is complete. Training loops
    (``collm_bench.llm.tuning.tune``) use it; a method needs to do nothing."""
    return _CHECKPOINTS.get()


def earlier_seconds() -> float:
    """Seconds that earlier, interrupted processes spent on the stage now being computed (0 outside
    a stage, on a first try, and under torchrun): a stage that measures its own time adds them, so
    that a resumed stage reports what it took, not what its last process took."""
    return _EARLIER.get()


def cache_root(override: str | Path | None = None) -> Path:
    """``--cache-dir``, else ``$COLLM_BENCH_CACHE``, else the user cache directory."""
    return cache_dir(override, "COLLM_BENCH_CACHE", "stages")

def code_identity(*roots: Any) -> dict[str, Any]:
    """What a stage's code is: the digest of every definition it reaches from ``roots`` (the
    function or module that computes it, its components' plugin modules; each a module name, a
    ``module:name`` or the object itself) and the numerical libraries' versions
    (``collm_bench.cache.identity``). Part of every stage key, so that changed code never reuses a
    stale stage, while moving or tidying code, or an edit elsewhere (a leaderboard renderer,
    another method), leaves the stage reusable."""
    from collm_bench.cache.identity import code_units, digest, library_versions

    return {"definitions": digest(code_units(*roots)), "libraries": library_versions()}


@dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    path: Path
    meta: dict[str, Any]
    cached: bool


class StageCache:
    """Stage outputs under ``root/<stage>/<key>/`` with a ``stage.json`` written last.

    ``stage.json`` carries the sha256 of every file of the stage. A stage is used only when
    each file is there and matches: a damaged or unreadable stage is reported in one line
    naming the file, removed and computed again (a cache must never feed a run silently
    corrupt weights under the same run id).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        _hold_lease(self.root)

    @staticmethod
    def key(stage: str, inputs: dict[str, Any]) -> str:
        # weights read from a local path are keyed by what is there, not only by the path
        blob = json.dumps({"stage": stage, "inputs": inputs, **local_weights(inputs)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def path(self, stage: str, key: str) -> Path:
        return inside(self.root, check_name("stage", stage), key)

    def lookup(self, stage: str, key: str, report: Callable[[str], None] | None = None) -> StageResult | None:
        """The verified stage, or None when it is absent or was damaged (then removed)."""
        path = self.path(stage, key)
        if not (path / STAGE_FILE).exists():
            return None
        meta, problem = _verified_meta(path)
        if problem is None:
            return StageResult(stage, key, path, meta, True)
        (report or _warn)(f"stage {stage}: {problem}; computing it again")
        _discard(path)
        return None

    def run(self, stage: str, inputs: dict[str, Any], compute: Callable[[Path], dict[str, Any]],
            progress: Callable[[str], None] | None = None) -> StageResult:
        """The cached output of ``stage`` for ``inputs``, computing it with ``compute(dir)`` if absent.

        ``compute`` writes its files into the given (empty) directory and returns metadata
        (timings, training curves) that is stored with them and returned on later hits.

        Under ``torchrun`` every rank computes (the computation may be data parallel), and
        rank 0's output is the one kept and returned to all.
        """
        key = self.key(stage, inputs)
        _lease_key(self.root, stage, key)
        lock = None
        found = None
        if distributed.is_main():
            found = self.lookup(stage, key, progress)
            if found is None:  # one process computes it; another that needs it waits, then reuses it
                lock = _StageLock(self.root / LOCKS / f"{check_name('stage', stage)}--{key}.lock", stage, progress)
                found = self.lookup(stage, key, progress)
        try:
            return self._run(stage, key, inputs, compute, progress, distributed.agree(found))
        finally:
            if lock is not None:
                lock.release()

    def _run(self, stage: str, key: str, inputs: dict[str, Any], compute: Callable[[Path], dict[str, Any]],
             progress: Callable[[str], None] | None, hit: StageResult | None) -> StageResult:
        if hit is not None:  # one branch for all ranks
            if progress:
                progress(f"stage {stage}: reusing {hit.path}")
            return hit
        final = self.path(stage, key)
        if distributed.is_main():
            staging = final.parent / f".{key}.partial-{os.getpid()}"
            remove_dead_partials(final.parent, f".{key}.partial-")
            try:
                staging.mkdir(parents=True)
            except OSError as exc:
                raise write_error(staging, exc) from exc
        else:  # the other ranks under torchrun compute beside the cache, and keep rank 0's copy
            staging = Path(tempfile.mkdtemp(prefix=f"collm-bench-{stage}-"))
        if progress:
            progress(f"stage {stage}: computing (key {key})")
        started = time.perf_counter()
        resume = final.parent / f".{key}.resume"   # kept across interruptions (see checkpoint_dir)
        single = distributed.world_size() == 1
        earlier, note = _processes_before(resume) if single and distributed.is_main() else (0.0, None)
        token = _CHECKPOINTS.set(resume if single else None)
        earlier_token = _EARLIER.set(earlier)
        try:
            meta = dict(compute(staging) or {})
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            _process_ended(resume, note)
            failed_write = as_write_error(staging, exc)  # a full disk names the folder
            if failed_write is not None:
                raise failed_write from exc
            raise
        finally:
            _CHECKPOINTS.reset(token)
            _EARLIER.reset(earlier_token)
        # a resumed stage took the time of every process that worked on it
        meta.setdefault("seconds", round(earlier + time.perf_counter() - started, 3))
        if not distributed.is_main():
            shutil.rmtree(staging, ignore_errors=True)
            return distributed.agree(None)  # rank 0's result, once it is in place
        files = {rel: sha256_file(staging / rel) for rel in _stage_files(staging)}
        for rel in files:  # some writers (safetensors) create 0600 files: a cache shared by a team needs umask's
            os.chmod(staging / rel, 0o666 & ~umask())
        write_json(staging / STAGE_FILE, {"stage": stage, "key": key, "inputs": inputs, "meta": meta,
                                          "files": files})
        # Another process may have finished the same stage meanwhile: keep theirs if it is sound
        # (a damaged one is removed by the lookup, and ours takes its place).
        kept = self.lookup(stage, key, progress) if final.exists() else None
        if kept is None:
            try:
                os.replace(staging, final)
            except OSError:  # theirs appeared just now
                kept = self.lookup(stage, key, progress)
                if kept is None:
                    raise
        if kept is not None:
            shutil.rmtree(staging, ignore_errors=True)
            return distributed.agree(kept)
        shutil.rmtree(resume, ignore_errors=True)  # the stage is complete: its checkpoint is spent
        return distributed.agree(StageResult(stage, key, final, meta, False))


LOCKS = ".locks"   # <root>/.locks/<stage>--<key>.lock, one empty file per stage ever computed


class _StageLock:
    """An exclusive lock on one stage key (``flock`` on its file under ``.locks``), held while the
    stage is computed, so that two runs needing one stage (``suite --jobs``, two shells) compute
    it once: the second waits, then finds it. The kernel releases it when its process dies, so a
    killed run leaves nothing that blocks the next."""

    def __init__(self, path: Path, stage: str, progress: Callable[[str], None] | None) -> None:
        import fcntl

        self.handle = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "a+")
        except OSError:   # a read-only cache computes beside it (nothing shared to protect)
            return
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"stage {stage}: another process is computing it; waiting to reuse it")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except OSError:   # a filesystem without locks: as before, the last complete copy wins
            pass

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()   # closing releases the lock; the empty file stays (removing it would race)
            self.handle = None


# Leases: a process that uses the cache holds ``.leases/<pid>.json`` for its whole life, naming
# the stages it has used, so that ``cache prune`` leaves alone what a live run has used or will
# use (``collm_bench.cache.admin``); a killed run's lease names a dead pid and counts for nothing.
LEASES = ".leases"
_LEASES: dict[Path, Path] = {}   # cache root -> this process's lease file


def _hold_lease(root: Path) -> None:
    if root in _LEASES:
        return
    try:
        (root / LEASES).mkdir(parents=True, exist_ok=True)
        path = root / LEASES / f"{os.getpid()}.json"
        write_json(path, {"pid": os.getpid(), "started": time.time(), "command": sys.argv, "stages": []})
    except OSError:   # a read-only cache: nothing to protect from a prune of ours
        return
    _LEASES[root] = path
    import atexit

    atexit.register(lambda: path.unlink(missing_ok=True))


def _lease_key(root: Path, stage: str, key: str) -> None:
    path = _LEASES.get(root)
    if path is None:
        return
    try:
        lease = json.loads(path.read_text())
        if [stage, key] not in lease["stages"]:
            lease["stages"].append([stage, key])
            write_json(path, lease)
    except (OSError, ValueError, KeyError):
        pass


def live_leases(root: Path) -> list[dict[str, Any]]:
    """The leases of processes still alive (a lease of a dead one is left over)."""
    from collm_bench._util.paths import _alive

    out = []
    for path in sorted((Path(root) / LEASES).glob("*.json")):
        try:
            lease = json.loads(path.read_text())
            pid = lease["pid"]
            if isinstance(pid, int) and pid > 0 and pid != os.getpid() and _alive(pid):   # -1: every process
                out.append(lease)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


PROCESS_PREFIX = "process-"   # one file per process that worked on an unfinished stage


def _process_ended(resume: Path, note: Path | None) -> None:
    """An interrupted process: its end time on its note, or, when it saved nothing to resume
    from, no resume folder at all (the next process starts afresh, and its time is the stage's)."""
    try:
        if note is None:
            return
        if not any(p.is_file() and not p.name.startswith(PROCESS_PREFIX) for p in resume.iterdir()):
            shutil.rmtree(resume, ignore_errors=True)
            return
        note.write_text(json.dumps({**json.loads(note.read_text()), "ended": time.time()}))
    except (OSError, ValueError, TypeError):
        pass


def _processes_before(resume: Path) -> tuple[float, Path | None]:
    """Seconds the earlier processes of this stage spent on it, and a note of this one's start.

    Each process leaves ``process-<pid>-<start>.json`` in the stage's resume folder. A process
    that was killed wrote no end: it is taken as the time of the last checkpoint file written
    after its start, read now, before this process overwrites them."""
    try:
        resume.mkdir(parents=True, exist_ok=True)
        notes = sorted(resume.glob(f"{PROCESS_PREFIX}*.json"))
        activity = [p.stat().st_mtime for p in resume.iterdir() if p.is_file() and not p.name.startswith(PROCESS_PREFIX)]
        total = 0.0
        for note in notes:
            entry = json.loads(note.read_text())
            if entry.get("ended") is None:
                after = [t for t in activity if t >= entry["started"]]
                entry["ended"] = max(after) if after else entry["started"]
                note.write_text(json.dumps(entry))
            total += max(0.0, float(entry["ended"]) - float(entry["started"]))
        now = time.time()
        note = resume / f"{PROCESS_PREFIX}{os.getpid()}-{now:.3f}.json"
        note.write_text(json.dumps({"started": now, "ended": None}))
        return total, note
    except (OSError, ValueError, KeyError, TypeError):   # bookkeeping only: never stops a stage
        return 0.0, None


def _stage_files(path: Path) -> list[str]:
    """Every file below a stage directory but ``stage.json``, as sorted relative POSIX paths."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                  if p.is_file() and p.relative_to(path).as_posix() != STAGE_FILE)


def _verified_meta(path: Path) -> tuple[dict[str, Any], str | None]:
    """(meta, None) when every file of the stage matches ``stage.json``, else ({}, the problem)."""
    marker = path / STAGE_FILE
    from collm_bench.data._checks import check_regular_file
    from collm_bench.errors import DataError

    try:
        check_regular_file(marker, STAGE_FILE)   # a FIFO would hang every lookup
    except DataError as exc:
        return {}, f"{marker}: {exc.problem}"
    try:
        stage = json.loads(marker.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{marker}: unreadable ({getattr(exc, 'msg', None) or exc})"
    files = stage.get("files") if isinstance(stage, dict) else None
    meta = stage.get("meta", {}) if isinstance(stage, dict) else None
    if not isinstance(files, dict) or not isinstance(meta, dict):
        return {}, f"{marker}: no file checksums (written by an older collm-bench, or damaged)"
    for rel, digest in files.items():
        target = path / rel
        if not is_safe_relative(rel):
            return {}, f"{marker}: lists {rel!r}, a path outside the stage"
        if not target.is_file():
            return {}, f"{target}: missing"
        try:
            actual = sha256_file(target)
        except OSError as exc:
            return {}, f"{target}: unreadable ({exc.strerror or exc})"
        if actual != digest:
            return {}, f"{target}: sha256 mismatch (the cached file is damaged)"
    extra = set(_stage_files(path)) - set(files)
    if extra:
        return {}, f"{path / sorted(extra)[0]}: not listed in {STAGE_FILE}"
    return meta, None


def _discard(path: Path) -> None:
    """Move a damaged stage out of the way (atomically), then delete it."""
    aside = path.parent / f".{path.name}.damaged-{os.getpid()}"
    try:
        os.replace(path, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)
