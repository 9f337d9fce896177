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

from collm_bench.cache._dirs import cache_dir
from collm_bench.data.format import PreparedDataset, load_prepared, read_manifest, write_json
from collm_bench.errors import UserError
from collm_bench._util.paths import check_name, inside, remove_dead_partials, write_error


def data_dir(override: str | Path | None = None) -> Path:
    """Where prepared (and downloaded raw) datasets live."""
    return cache_dir(override, "COLLM_BENCH_DATA", "datasets")

def looks_like_path(name: str) -> bool:
    return os.sep in name or name.startswith(".") or Path(name).is_dir()


def prepared_path(name: str, *, root: str | Path | None = None, registry=None) -> Path:
    from collm_bench.api.registry import get_registry

    spec = (registry or get_registry()).get("dataset", name)
    protocol = check_name(f"dataset {name!r}: protocol", f"protocol-{spec.protocol}")
    return inside(data_dir(root), check_name("dataset", name), protocol)


def prepare_dataset(name: str, *, root: str | Path | None = None, source: str | None = None,
                    force: bool = False, registry=None) -> Path:
    """Prepare a registered dataset into the cache (once) and return its directory.

    A cached copy is reused unless ``force``, or unless ``source`` is given and differs from
    the one the copy was prepared from (for ``synthetic`` it carries the generation options).
    """
    from collm_bench.api.registry import get_registry

    registry = registry or get_registry()
    spec = registry.get("dataset", name)
    target = prepared_path(name, root=root, registry=registry)
    if (target / "manifest.json").exists() and not force and (
            source is None or _prepared_source(target) == source):
        return target
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    remove_dead_partials(target.parent, f".{target.name}.partial-")  # a killed prepare's leftovers
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise write_error(staging, exc) from exc
    print(f"preparing dataset {name!r} into {target} ...", file=sys.stderr)
    try:
        with _data_dir_override(root):  # raw downloads follow --data-dir too
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


def dataset_path(name_or_dir: str | Path, *, root: str | Path | None = None,
                 source: str | None = None, registry=None) -> Path:
    """The prepared dataset directory of a registered name (prepared into the cache once) or a
    directory in the prepared format; nothing is read from it."""
    from collm_bench.api.registry import get_registry

    registry = registry or get_registry()
    text = str(name_or_dir)
    path = Path(text).expanduser()
    # A folder in the prepared format wins; otherwise a registered name wins over a folder of the
    # same name (say, ./ml-100k/ left by unzipping GroupLens).
    if (path / "manifest.json").exists() or (path.is_dir() and text not in registry.components["dataset"]):
        return path
    if looks_like_path(text) and text not in registry.components["dataset"]:
        raise UserError(f"{text}: no such directory")
    return prepare_dataset(text, root=root, source=source, registry=registry)


def resolve_dataset(name_or_dir: str | Path, *, root: str | Path | None = None,
                    source: str | None = None, registry=None) -> PreparedDataset:
    """A prepared dataset from a registered name or a directory in the prepared format."""
    return load_prepared(dataset_path(name_or_dir, root=root, source=source, registry=registry))


class _data_dir_override:
    """Point ``data_dir()`` (used by dataset plugins for their raw-download cache) at ``root``
    while a dataset is prepared."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = root

    def __enter__(self) -> None:
        self.saved = os.environ.get("COLLM_BENCH_DATA")
        if self.root:
            os.environ["COLLM_BENCH_DATA"] = str(Path(self.root).expanduser())

    def __exit__(self, *exc) -> None:
        if self.saved is None:
            os.environ.pop("COLLM_BENCH_DATA", None)
        else:
            os.environ["COLLM_BENCH_DATA"] = self.saved
