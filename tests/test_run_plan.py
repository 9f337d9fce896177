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


def test_a_second_plan_names_the_run_without_reading_the_data(registry, tmp_path, monkeypatch):
    """The evaluation is kept in the stage cache: a later process plans from the manifest alone
    (what makes a suite's --dry-run quick), and the run it plans draws the same rows."""
    import collm_bench.data.format as fmt

    tiny_dataset(tmp_path / "tiny")
    request = RunRequest(method="dot", dataset=str(tmp_path / "tiny"), out=tmp_path / "runs", seed=2,
                         options={"max_epochs": "2"}, eval_sample=12, cache_dir=str(tmp_path / "cache"))
    first = plan(request, registry=registry)
    assert first.memo.exists() and first.memo.parent.parent == tmp_path / "cache"

    def no_reading(*args, **kwargs):
        raise AssertionError("the data was read")

    with monkeypatch.context() as patch:
        patch.setattr(fmt, "load_prepared", no_reading)
        second = plan(request, registry=registry)
    assert second.run_id == first.run_id and second.evaluation == first.evaluation
    assert list(second.eval_rows) == list(first.eval_rows)   # drawn again from the data, and checked
    result = run(request, registry=registry, progress=lambda m: None, planned=second)
    assert result.record["run_id"] == first.run_id


def test_a_kept_evaluation_that_is_wrong_stops_the_run_and_is_removed(registry, tmp_path):
    import json

    tiny_dataset(tmp_path / "tiny")
    request = RunRequest(method="dot", dataset=str(tmp_path / "tiny"), out=tmp_path / "runs",
                         options={"max_epochs": "2"}, eval_sample=12, cache_dir=str(tmp_path / "cache"))
    memo = plan(request, registry=registry).memo
    kept = json.loads(memo.read_text())
    kept["sample"]["rows_sha256"] = "0" * 64          # as if another sampler had drawn it
    memo.write_text(json.dumps(kept))
    planned = plan(request, registry=registry)
    assert planned.evaluation["sample"]["rows_sha256"] == "0" * 64
    with pytest.raises(RuntimeError, match="not the planned ones"):
        run(request, registry=registry, progress=lambda m: None, planned=planned)
    assert not memo.exists()
    assert not any((tmp_path / "runs").glob("*/record.json"))
    assert plan(request, registry=registry).evaluation == json.loads(memo.read_text())   # drawn again, kept


def test_the_kept_evaluation_follows_the_code_that_draws_it(tmp_path, monkeypatch):
    from collm_bench.cache import _evaluation_memo, stages

    before = _evaluation_memo.entry_path(tmp_path, "d" * 64, 12)
    assert before == _evaluation_memo.entry_path(tmp_path, "d" * 64, 12)
    assert before != _evaluation_memo.entry_path(tmp_path, "d" * 64, None)
    assert before != _evaluation_memo.entry_path(tmp_path, "e" * 64, 12)
    monkeypatch.setattr(stages, "code_identity", lambda *roots: {"definitions": "other", "libraries": {}})
    assert before != _evaluation_memo.entry_path(tmp_path, "d" * 64, 12)
