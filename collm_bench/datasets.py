"""Resolving a dataset name (or a directory) to a prepared dataset, with a user cache.

Registered datasets are prepared once into ``<data dir>/<name>/protocol-<protocol>`` and
reused; the data dir is ``--data-dir``, else ``$COLLM_BENCH_DATA``, else the user cache
directory. Any directory in the prepared format is accepted wherever a name is.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from collm_bench.dataset_format import PreparedDataset, load_prepared, read_manifest, write_json
from collm_bench.errors import UserError


def data_dir(override: str | Path | None = None) -> Path:
    """Where prepared (and downloaded raw) datasets live."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("COLLM_BENCH_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("collm-bench")) / "datasets"


def looks_like_path(name: str) -> bool:
    return os.sep in name or name.startswith(".") or Path(name).is_dir()


def prepared_path(name: str, *, root: str | Path | None = None, registry=None) -> Path:
    from collm_bench.plugins import get_registry

    spec = (registry or get_registry()).get("dataset", name)
    return data_dir(root) / name / f"protocol-{spec.protocol}"


def prepare_dataset(name: str, *, root: str | Path | None = None, source: str | None = None,
                    force: bool = False, registry=None) -> Path:
    """Prepare a registered dataset into the cache (once) and return its directory.

    A cached copy is reused unless ``force``, or unless ``source`` is given and differs from
    the one the copy was prepared from (for ``synthetic`` it carries the generation options).
    """
    from collm_bench.plugins import get_registry

    registry = registry or get_registry()
    spec = registry.get("dataset", name)
    target = prepared_path(name, root=root, registry=registry)
    if (target / "manifest.json").exists() and not force and (
            source is None or _prepared_source(target) == source):
        return target
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    print(f"preparing dataset {name!r} into {target} ...", file=sys.stderr)
    try:
        spec.prepare(staging, source)
        load_prepared(staging)  # never cache what does not validate
        if source is not None:  # a different --source later prepares again
            manifest = read_manifest(staging)
            manifest["prepared_from"] = source
            write_json(staging / "manifest.json", manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target


def _prepared_source(target: Path) -> str | None:
    try:
        return read_manifest(target).get("prepared_from")
    except UserError:
        return None


def resolve_dataset(name_or_dir: str | Path, *, root: str | Path | None = None,
                    source: str | None = None, registry=None) -> PreparedDataset:
    """A prepared dataset from a registered name or a directory in the prepared format."""
    text = str(name_or_dir)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_prepared(path)
    if looks_like_path(text):
        raise UserError(f"{text}: no such directory")
    return load_prepared(prepare_dataset(text, root=root, source=source, registry=registry))
