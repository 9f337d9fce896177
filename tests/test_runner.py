"""A whole run on tiny data with the kit's fake encoder plugin: record, predictions, leaderboard."""
import json

import pytest

from collm_bench import UserError
from collm_bench.api.registry import load_registry
from collm_bench.records.store import metrics_match, read_record
from collm_bench.records.predictions import metrics_from_predictions
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset
from collm_bench.testing.fakes import FakePlugin


@pytest.fixture
def registry():
    return load_registry([("dot", FakePlugin())], entry_points=False)


@pytest.fixture
def dataset_dir(tmp_path):
    tiny_dataset(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_run_writes_record_and_predictions(registry, dataset_dir, tmp_path):
    result = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs",
                            options={"max_epochs": "3"}), registry=registry, progress=lambda m: None)
    record = read_record(result.run_dir).data
    assert record["method"] == "dot" and record["config"]["encoder_options"]["max_epochs"] == 3
    assert record["evaluation"] == {"split": "test", "rows": 24, "total_rows": 24, "sampled": False}
    assert metrics_match(record["metrics"], metrics_from_predictions(result.run_dir))
    assert set(record["metrics"]) == {"overall", "warm", "cold"}
    for key in ("schema_version", "run_id", "dataset", "seed", "timings", "peak_memory", "device",
                "versions", "date"):
        assert key in record
    assert record["versions"]["plugins"] == {"dot": "unknown"}
    predictions = (result.run_dir / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "user,item,label,score,subset" and len(predictions) == 25


def test_same_seed_same_metrics(registry, dataset_dir, tmp_path):
    # separate stage caches: the second run must train again, not reuse the first
    a = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "a", seed=3,
                       cache_dir=str(tmp_path / "cache_a")), registry=registry, progress=lambda m: None)
    b = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "b", seed=3,
                       cache_dir=str(tmp_path / "cache_b")), registry=registry, progress=lambda m: None)
    assert not b.record["timings"]["stages"]["encoder-dot"]["cached"]
    assert a.record["metrics"] == b.record["metrics"]


def test_rerun_reuses_the_encoder_stage(registry, dataset_dir, tmp_path):
    first = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs"),
                registry=registry, progress=lambda m: None)
    again = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs"),
                registry=registry, progress=lambda m: None)
    assert not first.record["timings"]["stages"]["encoder-dot"]["cached"]
    assert again.record["timings"]["stages"]["encoder-dot"]["cached"]
    assert again.record["metrics"] == first.record["metrics"]
    other_seed = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs", seed=1),
                     registry=registry, progress=lambda m: None)
    assert not other_seed.record["timings"]["stages"]["encoder-dot"]["cached"]


def test_sampled_evaluation_draws_rows_within_users_and_says_so(registry, dataset_dir, tmp_path):
    result = run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs", eval_sample=12),
                 registry=registry, progress=lambda m: None)
    ev = result.record["evaluation"]
    assert ev["sampled"] and ev["total_rows"] == 24 and 0 < ev["rows"] < 24
    assert ev["sample"]["unit"] == "rows" and ev["sample"]["fraction"] == 0.5
    assert result.record["config"]["evaluation"]["sample"]["rows_sha256"] == ev["sample"]["rows_sha256"]
    from collm_bench.reporting.leaderboard import render

    assert f"a sample of {ev['rows']} of 24 test rows" in render(tmp_path / "runs", "md")


def test_unknown_method_and_option(registry, dataset_dir, tmp_path):
    with pytest.raises(UserError, match="did you mean 'dot'"):
        run(RunRequest(method="dott", dataset=str(dataset_dir), out=tmp_path), registry=registry)
    with pytest.raises(UserError, match="unknown option 'dimm'"):
        run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path, options={"dimm": "3"}),
            registry=registry)
    with pytest.raises(UserError, match="expects int"):
        run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path, options={"dim": "x"}),
            registry=registry)


def test_leaderboard_from_records(registry, dataset_dir, tmp_path):
    from collm_bench.reporting.leaderboard import render

    for seed in (0, 1):
        run(RunRequest(method="dot", dataset=str(dataset_dir), out=tmp_path / "runs", seed=seed),
            registry=registry, progress=lambda m: None)
    md = render(tmp_path / "runs", "md")
    assert "## tiny" in md and "| dot " in md and "±" in md and "0,1" in md
    payload = json.loads(render(tmp_path / "runs", "json"))
    assert len(payload["tiny"][0]["AUC"]) == 2
    csv_text = render(tmp_path / "runs", "csv")
    assert csv_text.splitlines()[0].startswith("Dataset,Method,Backbone,AUC")


def test_options_are_coerced_by_annotation():
    from dataclasses import dataclass

    from collm_bench.api.components import parse_options

    @dataclass(frozen=True)
    class Opts:
        steps: int | None = None
        lr: float = 1e-3
        flag: bool = False
        dims: tuple[int, ...] = (64, 16)
        preset: str = "auto"

        def __post_init__(self):
            if self.preset not in ("auto", "cpu", "paper"):
                raise ValueError(f"preset must be auto, cpu or paper, got {self.preset!r}")

    opts = parse_options(Opts, {"steps": "5", "lr": "0.01", "flag": "yes", "dims": "8,4", "preset": "cpu"}, owner="m")
    assert (opts.steps, opts.lr, opts.flag, opts.dims, opts.preset) == (5, 0.01, True, (8, 4), "cpu")
    assert parse_options(Opts, {"steps": "none"}, owner="m").steps is None
    with pytest.raises(UserError, match="expects int"):
        parse_options(Opts, {"steps": "five"}, owner="m")
    with pytest.raises(UserError, match="preset must be"):
        parse_options(Opts, {"preset": "gpu"}, owner="m")
