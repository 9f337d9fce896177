"""What may name a folder, and where writes may go.

Names that reach a path (dataset, method, encoder, backbone names, run ids) come from plugins,
manifests and the command line; each is checked here before it is joined to a root, so that no
crafted name (``../x``, an absolute path, a newline) writes outside the output root, the data
dir or the stage cache.
"""
from __future__ import annotations

import errno
import glob
import os
import re
import tempfile
from pathlib import Path

from collm_bench.errors import UserError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
NAME_RULE = "1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"


def is_safe_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(what: str, name: object, *, fix: str = "") -> str:
    """``name`` if it can name one folder, else a one-line ``UserError`` naming ``what``."""
    if not is_safe_name(name):
        raise UserError(f"{what} {name!r} cannot name a folder: it must be {NAME_RULE}"
                        + (f"; {fix}" if fix else ""))
    return name  # type: ignore[return-value]


def is_safe_relative(rel: object) -> bool:
    """Whether ``rel`` is a relative POSIX path that stays below its folder."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def inside(root: str | Path, *parts: str) -> Path:
    """``root / parts...``, refused unless it stays below ``root`` (links resolved)."""
    root_path = Path(root).resolve()
    path = root_path.joinpath(*parts).resolve()
    if path != root_path and root_path not in path.parents:
        raise UserError(f"{path}: outside {root_path}; refused to write there")
    return Path(root).joinpath(*parts)


def ensure_writable(root: str | Path, what: str, flag: str) -> Path:
    """Create ``root`` if needed and prove a file can be written in it, before any work.

    ``what`` names the folder (``output root``) and ``flag`` the option that moves it.
    Running as root makes permission bits moot, so the probe writes a real file.
    """
    root = Path(root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".collm-bench-write-probe-", dir=root)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{root}: the {what} cannot be written ({_reason(exc)}); "
                        f"choose another with {flag}") from None
    return root


# Errors of a write that the user can fix by freeing space or choosing another folder.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(path: str | Path, exc: OSError) -> UserError:
    """One line for a failed write: the file, why, and what to do."""
    hint = {errno.ENOSPC: "free some space, or point the output or cache elsewhere",
            errno.EDQUOT: "free some space, or point the output or cache elsewhere",
            errno.EROFS: "the file system is read-only: point the output or cache elsewhere",
            errno.EACCES: "check the folder's permissions, or point the output or cache elsewhere"}
    extra = hint.get(exc.errno or -1)
    return UserError(f"{path}: cannot write ({_reason(exc)})" + (f"; {extra}" if extra else ""))


def as_write_error(path: str | Path, exc: BaseException) -> UserError | None:
    """A ``write_error`` for ``exc`` when it is a failed write the user can fix, else None.
    Writers outside Python's I/O (safetensors' Rust core) raise their own types, naming the
    OS error only in their message."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return write_error(path, exc)
    text = str(exc)
    for code in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        if os.strerror(code) in text or f"os error {code})" in text:
            return write_error(path, OSError(code, os.strerror(code)))
    return None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def remove_dead_partials(parent: Path, prefix: str) -> None:
    """Remove ``<prefix><pid>`` folders that interrupted processes left in ``parent`` (their
    process is gone; a live one may still be writing its own)."""
    import shutil

    if not parent.is_dir():
        return
    for path in parent.glob(f"{glob.escape(prefix)}*"):
        pid = path.name[len(prefix):]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
