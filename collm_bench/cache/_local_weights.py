"""Local weights in a stage's key: a backbone read from a folder or file on this machine
(``--backbone-path DIR``, ``--backbone hf:path/to/model.gguf``) is named by its path in the stage's
inputs, and the same path may hold other weights tomorrow. ``fingerprint`` reads what is there:
every file's relative path and size, the content digest of each small file (configs,
tokenizers) and the inode, modification and status-change times of each large one (hashing
gigabytes of weights on every run would cost minutes; a copy that keeps the modification time,
``cp -p`` or ``rsync -a``, still gets a new status-change time, which no user can set back). A stage input that names no local path gets no fingerprint, so every
other stage keeps its key."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from collm_bench.data.format import sha256_file

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

SMALL = 1 << 20   # files up to 1 MiB are read whole


def local_paths(inputs: dict[str, Any]) -> list[str]:
    """The local files or folders that a stage's inputs name as a backbone's weights."""
    out = []
    options = inputs.get("backbone_options")
    if isinstance(options, dict) and isinstance(options.get("path"), str):
        out.append(options["path"])
    backbone = inputs.get("backbone")
    if isinstance(backbone, str) and backbone.startswith("hf:"):
        out.append(backbone[3:])
    out = [os.path.expanduser(p) for p in out if p]   # as the backbone loader reads them
    return [p for p in out if os.path.exists(p)]


def fingerprint(path: str | Path) -> str:
    """A digest of what lies at ``path`` now (a file, or a folder's files, hidden ones skipped)."""
    root = Path(path)
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        name = file.name if file == root else file.relative_to(root).as_posix()
        what = (sha256_file(file) if stat.st_size <= SMALL
                else f"inode {stat.st_ino} mtime {stat.st_mtime_ns} ctime {stat.st_ctime_ns}")
        digest.update(f"{name}\x00{stat.st_size}\x00{what}\n".encode())
    return digest.hexdigest()[:20]


def local_weights(inputs: dict[str, Any]) -> dict[str, Any]:
    """``{"local_weights": {path: fingerprint}}`` for the local weights ``inputs`` name, else ``{}``."""
    paths = local_paths(inputs)
    return {"local_weights": {p: fingerprint(p) for p in paths}} if paths else {}
