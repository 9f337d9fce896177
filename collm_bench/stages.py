"""The stage cache: each pipeline stage's output stored under a key that hashes its inputs.

A stage's inputs are everything its output depends on: dataset manifest digest, the stage's
options, upstream stage keys, seed, and the versions and source fingerprints of the code and
plugins involved. A rerun reuses what exists; an interrupted run resumes at the first
missing stage. A stage directory appears only complete (built under a temp name, renamed).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from collm_bench import distributed
from collm_bench.cache_dirs import cache_dir
from collm_bench.dataset_format import write_json

STAGE_FILE = "stage.json"


def cache_root(override: str | Path | None = None) -> Path:
    """``--cache-dir``, else ``$COLLM_BENCH_CACHE``, else the user cache directory."""
    return cache_dir(override, "COLLM_BENCH_CACHE", "stages")

def source_fingerprint(*modules: str) -> str:
    """A digest of the source files of the named modules (packages: every .py below them;
    a single module: itself and the ``<module>_*.py`` files beside it).

    Part of every stage key, so that changed code never reuses a stale stage, even while
    a version number stays the same during development.
    """
    import importlib.util

    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            digest.update(f"{name}:missing".encode())
            continue
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            files = sorted(origin.parent.rglob("*.py"))
        else:  # a top-level module plugin: itself and its ``<name>_*.py`` siblings (its model files)
            files = [origin] + sorted(origin.parent.glob(f"{origin.stem}_*.py"))
        for path in files:
            digest.update(str(path.relative_to(origin.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def code_identity(*plugin_modules: str) -> dict[str, Any]:
    """Versions and source fingerprints of the core and of the given plugin modules, and the
    versions of the numerical libraries."""
    try:
        version = metadata.version("collm-bench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    libraries = {}
    for dist in ("torch", "transformers", "peft", "numpy"):  # numerics change with them
        try:
            libraries[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            libraries[dist] = None
    return {"collm-bench": version, "core": source_fingerprint("collm_bench"),
            "plugins": {m: source_fingerprint(m) for m in plugin_modules}, "libraries": libraries}


@dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    path: Path
    meta: dict[str, Any]
    cached: bool


class StageCache:
    """Stage outputs under ``root/<stage>/<key>/`` with a ``stage.json`` written last."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(stage: str, inputs: dict[str, Any]) -> str:
        blob = json.dumps({"stage": stage, "inputs": inputs}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> StageResult | None:
        path = self.path(stage, key)
        marker = path / STAGE_FILE
        if not marker.exists():
            return None
        return StageResult(stage, key, path, json.loads(marker.read_text()).get("meta", {}), True)

    def run(self, stage: str, inputs: dict[str, Any], compute: Callable[[Path], dict[str, Any]],
            progress: Callable[[str], None] | None = None) -> StageResult:
        """The cached output of ``stage`` for ``inputs``, computing it with ``compute(dir)`` if absent.

        ``compute`` writes its files into the given (empty) directory and returns metadata
        (timings, training curves) that is stored with them and returned on later hits.

        Under ``torchrun`` every rank computes (the computation may be data parallel), and
        rank 0's output is the one kept and returned to all.
        """
        key = self.key(stage, inputs)
        hit = distributed.agree(self.lookup(stage, key) if distributed.is_main() else None)  # one branch for all
        if hit is not None:
            if progress:
                progress(f"stage {stage}: reusing {hit.path}")
            return hit
        final = self.path(stage, key)
        if distributed.is_main():
            staging = final.parent / f".{key}.partial-{os.getpid()}"
            _remove_dead_partials(final.parent, key)
            staging.mkdir(parents=True)
        else:  # the other ranks under torchrun compute beside the cache, and keep rank 0's copy
            staging = Path(tempfile.mkdtemp(prefix=f"collm-bench-{stage}-"))
        if progress:
            progress(f"stage {stage}: computing (key {key})")
        started = time.perf_counter()
        try:
            meta = dict(compute(staging) or {})
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        meta.setdefault("seconds", round(time.perf_counter() - started, 3))
        if not distributed.is_main():
            shutil.rmtree(staging, ignore_errors=True)
            return distributed.agree(None)  # rank 0's result, once it is in place
        write_json(staging / STAGE_FILE, {"stage": stage, "key": key, "inputs": inputs, "meta": meta})
        if final.exists():  # another process finished the same stage meanwhile: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
            return distributed.agree(self.lookup(stage, key))
        os.replace(staging, final)
        return distributed.agree(StageResult(stage, key, final, meta, False))



def _remove_dead_partials(parent: Path, key: str) -> None:
    """Remove what interrupted runs left of this stage (their process is gone)."""
    for path in parent.glob(f".{key}.partial-*"):
        pid = path.name.rsplit("-", 1)[-1]
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
