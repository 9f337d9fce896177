"""The plan of a run fixes its run id before anything is trained (what lets a suite skip runs)."""
import pytest

from collm_bench.api.registry import load_registry
from collm_bench.runner import RunRequest, plan, run
from collm_bench.testing import tiny_dataset
from collm_bench.testing.fakes import FakePlugin


@pytest.fixture
def registry():
    return load_registry([("dot", FakePlugin())], entry_points=False)


def test_plan_predicts_the_run_id(registry, tmp_path):
    tiny_dataset(tmp_path / "tiny")
    request = RunRequest(method="dot", dataset=str(tmp_path / "tiny"), out=tmp_path / "runs", seed=2,
                         options={"max_epochs": "2"}, eval_sample=12)
    planned = plan(request, registry=registry)
    assert not planned.run_dir.exists()
    result = run(request, registry=registry, progress=lambda m: None, planned=planned)
    assert result.run_dir == planned.run_dir
    assert result.record["run_id"] == planned.run_id and result.record["config"] == planned.config


def test_plan_applies_a_methods_presets(tmp_path):
    """tallrec's options are recorded with the preset resolved ("auto" -> cpu/paper), and so
    does its plan."""
    tiny_dataset(tmp_path / "tiny")
    planned = plan(RunRequest(method="tallrec", dataset=str(tmp_path / "tiny"), backbone="tiny-llama",
                              out=tmp_path / "runs"), registry=load_registry())
    assert planned.config["options"]["preset"] in ("cpu", "paper")
    assert planned.config["options"]["max_steps"] is not None
