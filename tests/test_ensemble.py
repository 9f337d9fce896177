"""The ensemble method: its row equals an independent average of the members' saved scores, and
it refuses members evaluated on other rows."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

import collm_bench_plugins.methods.ensemble as ensemble
from collm_bench import UserError
from collm_bench.api.registry import load_registry
from collm_bench.records.store import metrics_match, read_record
from collm_bench.records.predictions import metrics_from_predictions
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset
from collm_bench.testing.fakes import FakePlugin

QUIET = {"progress": lambda m: None}


@pytest.fixture(scope="module")
def registry():
    return load_registry([("dot", FakePlugin()), ("ensemble", ensemble)], entry_points=False)


@pytest.fixture(scope="module")
def members(registry, tmp_path_factory):
    """Two dot-product runs (different seeds and sizes) on tiny data, all test rows."""
    root = tmp_path_factory.mktemp("ens")
    tiny_dataset(root / "tiny")
    out = root / "runs"
    runs = [run(RunRequest(method="dot", dataset=str(root / "tiny"), out=out, seed=seed,
                           options={"max_epochs": "2", "dim": dim}, cache_dir=str(root / "cache")),
                registry=registry, **QUIET).run_dir
            for seed, dim in ((0, "4"), (1, "8"))]
    return root, out, runs


def _ensemble(registry, root, out, refs, **kw):
    options = {"runs": ",".join(str(r) for r in refs), **kw.pop("options", {})}
    return run(RunRequest(method="ensemble", dataset=str(root / "tiny"), out=out, options=options, **kw),
               registry=registry, **QUIET)


def _independent(frames, how):
    if how == "sigmoid":
        parts = [1.0 / (1.0 + np.exp(-f["score"].to_numpy())) for f in frames]
    elif how == "rank":
        parts = [rankdata(f["score"].to_numpy()) / len(f) for f in frames]
    elif how == "zscore":
        parts = [(f["score"] - f["score"].mean()) / f["score"].std(ddof=0) for f in frames]
    else:
        parts = [f["score"].to_numpy() for f in frames]
    return np.mean(np.vstack(parts), axis=0)


@pytest.mark.parametrize("how", ["sigmoid", "none", "rank", "zscore"])
def test_row_equals_an_independent_average_of_saved_scores(registry, members, how):
    root, out, runs = members
    result = _ensemble(registry, root, out, runs, options={"normalize": how})
    frames = [pd.read_csv(r / "predictions.csv") for r in runs]
    mine = pd.read_csv(result.run_dir / "predictions.csv")
    assert (mine[["user", "item", "label", "subset"]] == frames[0][["user", "item", "label", "subset"]]).all().all()
    expected = _independent(frames, how)
    np.testing.assert_allclose(mine["score"].to_numpy(), expected, rtol=1e-7, atol=1e-9)
    assert result.record["metrics"]["overall"]["auc"] == pytest.approx(
        roc_auc_score(mine["label"], expected), abs=1e-6)
    assert metrics_match(result.record["metrics"], metrics_from_predictions(result.run_dir))


def test_record_names_members_by_run_id(registry, members):
    root, out, runs = members
    by_path = _ensemble(registry, root, out, runs)
    by_id = _ensemble(registry, root, out, [r.name for r in runs])   # ids under --out
    assert by_path.run_dir == by_id.run_dir
    record = by_id.record
    assert record["config"]["options"] == {"runs": [r.name for r in runs], "normalize": "sigmoid"}
    assert record["label"] == "dot+dot" and record["method"] == "ensemble"
    assert [m["run_id"] for m in record["training"]["members"]] == [r.name for r in runs]
    # an ensemble costs what its members cost (no model runs)
    member_costs = sum(read_record(r).timing("train_seconds") for r in runs)
    assert record["timings"]["train_seconds"] == pytest.approx(member_costs, abs=2e-3)


def test_the_row_names_its_members_backbone_and_keeps_its_planned_run_id(registry, members, tmp_path):
    """An ensemble of MF and TALLRec-on-MiniLM is a row on MiniLM (a board's Backbone column),
    while its config, hence its run id, stays what its plan said (it takes no --backbone)."""
    import json
    import shutil

    from collm_bench.runner import plan

    root, out, runs = members
    copies = []
    for run_dir, backbone in zip(runs, (None, "tiny-llama")):   # as if the second ran on a backbone
        copy = tmp_path / "runs" / run_dir.name
        shutil.copytree(run_dir, copy)
        record = json.loads((copy / "record.json").read_text())
        record["backbone"] = backbone
        (copy / "record.json").write_text(json.dumps(record))
        copies.append(copy)
    request = RunRequest(method="ensemble", dataset=str(root / "tiny"), out=tmp_path / "runs",
                         options={"runs": ",".join(c.name for c in copies)})   # ids: what the record states
    planned = plan(request, registry=registry)
    result = run(request, registry=registry, planned=planned, **QUIET)
    assert result.record["backbone"] == "tiny-llama"
    assert result.record["config"]["backbone"] is None and result.run_dir == planned.run_dir
    assert [m["backbone"] for m in result.record["training"]["members"]] == [None, "tiny-llama"]


def test_refuses_members_evaluated_on_other_rows(registry, members):
    root, out, runs = members
    with pytest.raises(UserError, match="scored other rows") as err:
        _ensemble(registry, root, out, runs, eval_sample=12)
    assert "\n" not in str(err.value) and "--full-test" in str(err.value)


def test_refuses_another_dataset(registry, members, tmp_path):
    root, out, runs = members
    other = tmp_path / "other"
    tiny_dataset(other, seed=1)
    with pytest.raises(UserError, match="evaluated on dataset 'tiny'"):
        run(RunRequest(method="ensemble", dataset=str(other), out=out,
                       options={"runs": ",".join(map(str, runs))}), registry=registry, **QUIET)


def test_refuses_bad_member_lists(registry, members, tmp_path):
    root, out, runs = members
    with pytest.raises(UserError, match="two or more"):
        _ensemble(registry, root, out, runs[:1])
    with pytest.raises(UserError, match="not found"):
        _ensemble(registry, root, out, [runs[0], tmp_path / "nothing"])
    with pytest.raises(UserError, match="same run is named twice"):
        _ensemble(registry, root, out, [runs[0], runs[0].name])
    with pytest.raises(UserError, match="option .normalize. got .*; allowed: one of sigmoid"):
        _ensemble(registry, root, out, runs, options={"normalize": "softmax"})
