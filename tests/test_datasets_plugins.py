"""The four built-in datasets: registration, light imports, the prepared-dataset cache."""
import subprocess
import sys

import pytest

from collm_bench import DatasetSpec
from collm_bench.data.datasets import prepare_dataset, prepared_path, resolve_dataset
from collm_bench.api.registry import load_registry

MODULES = {
    "ml-100k": "collm_bench_plugins.datasets.movielens_100k",
    "ml-1m": "collm_bench_plugins.datasets.movielens_1m",
    "amazon-book": "collm_bench_plugins.datasets.amazon_book",
    "synthetic": "collm_bench_plugins.datasets.synthetic",
}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_registered_through_entry_points(registry, name):
    spec = registry.get("dataset", name)
    assert isinstance(spec, DatasetSpec)
    assert spec.name == name and spec.protocol == "1" and spec.description
    assert registry.entry("dataset", name).plugin == name
    assert spec.prepare.__module__ == MODULES[name]


def test_plugin_modules_import_light():
    code = ("import sys\n"
            + "".join(f"import {m}\n" for m in MODULES.values())
            + "heavy = [m for m in ('pandas', 'torch', 'transformers', 'sklearn') if m in sys.modules]\n"
            + "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the dataset plugins imported {out.stdout.strip()}"


def test_prepare_dataset_caches_and_follows_the_source(tmp_path, registry):
    root = tmp_path / "data"
    path = prepare_dataset("synthetic", root=root, source="rows=600,seed=1", registry=registry)
    assert path == prepared_path("synthetic", root=root, registry=registry)
    first = (path / "manifest.json").stat().st_mtime_ns
    assert prepare_dataset("synthetic", root=root, registry=registry) == path  # no source: reuse
    assert prepare_dataset("synthetic", root=root, source="rows=600,seed=1", registry=registry) == path
    assert (path / "manifest.json").stat().st_mtime_ns == first
    prepare_dataset("synthetic", root=root, source="rows=700,seed=1", registry=registry)
    data = resolve_dataset("synthetic", root=root, registry=registry)
    assert len(data.interactions) == 700
    assert data.manifest["prepared_from"] == "rows=700,seed=1"
    assert not list(path.parent.glob(".*partial*"))
