"""Code identities kept between processes, so that checking a board's records does not parse the
package again on every command (``collm-bench suite --dry-run``, ``leaderboard``).

An entry is one ``code_units`` answer under ``<stage cache>/.identity/``, keyed by the roots, the
pins and the identity code itself (``identity.py``, ``_sources.py`` and this module, and the
Python version, whose grammar the syntax trees are of). It is used only when every module the
answer looked up still resolves to the same file with the same content (sha256), a module that
was not found included: an entry can be missing or ignored, never wrong. Nothing is pickled.
Within one process a file is hashed once while its ``file_stamp`` stays, as the identity graph
itself reuses what it parsed.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from collm_bench.cache._sources import origin

__identity__ = "plumbing"

FOLDER = ".identity"
# this process: (entry, import path) -> (answer, file stamps); checked like the identity graph's own
# reuse, by the files' stamps (a new file on the path is seen by a new process)
_MEMO: dict[tuple[str, tuple[str, ...]], tuple[Any, dict[Path, tuple[int, ...]]]] = {}


_HASHED: dict[tuple[Path, tuple[int, ...]], str] = {}   # this process: (file, stamp) -> sha256


def _sha_file(path: Path) -> str:
    """The file's sha256, hashed once a process while its ``file_stamp`` stays (the entries of one
    command share most of their modules)."""
    stamp = file_stamp(path)
    if (path, stamp) not in _HASHED:
        _HASHED[(path, stamp)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _HASHED[(path, stamp)]


def file_stamp(path: Path) -> tuple[int, ...]:
    """What changes with a file's content, short of reading it (also what the identity graph of a
    process checks before it reuses what it parsed) (a copy that keeps the mtime still
    changes the inode or the status-change time)."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_ctime_ns


def key(*parts: Any) -> str:
    here = Path(__file__).resolve().parent
    code = [_sha_file(here / name) for name in ("identity.py", "_sources.py", "_identity_store.py")] + [sys.version]
    return hashlib.sha256(json.dumps([code, parts], default=str).encode()).hexdigest()[:32]


def _folder() -> Path | None:
    from collm_bench.cache._dirs import cache_dir

    try:
        return cache_dir(None, "COLLM_BENCH_CACHE", "stages") / FOLDER
    except Exception:   # no cache directory to be had: identities are computed every time
        return None


def load(entry: str, search_path: tuple[str, ...]) -> Any | None:
    """The stored answer of ``entry`` if every module it looked up is as it was, else None."""
    memo = (entry, search_path)
    if memo in _MEMO:
        answer, stamps = _MEMO[memo]
        try:
            if all(file_stamp(path) == stamp for path, stamp in stamps.items()):
                return answer
        except OSError:
            pass
        del _MEMO[memo]
    folder = _folder()
    try:
        stored = json.loads((folder / f"{entry}.json").read_text()) if folder else None
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("modules"), dict):
        return None
    stamps = {}
    try:
        for name, (path, digest) in stored["modules"].items():
            now = origin.__wrapped__(name, search_path)   # the disk as it is now, not this process's lookups
            if (str(now) if now else None) != path:
                return None
            if now is not None:
                if _sha_file(now) != digest:
                    return None
                stamps[now] = file_stamp(now)
        answer = tuple((str(d), str(label)) for d, label in stored["answer"])
    except (OSError, TypeError, ValueError, KeyError):   # an entry of another shape: a miss
        return None
    _MEMO[memo] = (answer, stamps)
    return answer


def save(entry: str, search_path: tuple[str, ...], modules: dict[str, tuple[Path | None, str | None]],
         answer: Any) -> None:
    """Keep ``answer``, valid while each of ``modules`` (name -> the file found and the sha256 of
    what was parsed of it, or (None, None): not found) stays as it was."""
    folder = _folder()
    try:
        listed = {name: [str(path) if path else None, digest] for name, (path, digest) in modules.items()}
        if any(path and _sha_file(path) != digest for path, digest in modules.values()):
            return   # a file changed while the answer was made: keep nothing
        _MEMO[(entry, search_path)] = (answer, {path: file_stamp(path) for path, _ in modules.values() if path})
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{entry}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"modules": listed, "answer": [list(pair) for pair in answer]}))
        os.replace(tmp, folder / f"{entry}.json")
    except OSError:   # a read-only cache: the answer is simply not kept
        return
