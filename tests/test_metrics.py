import math

import numpy as np
import pytest

from collm_bench.records.metrics import auc, evaluate, ndcg_one, per_user


def test_auc_hand_computed():
    # positive/negative pairs: (.9>.8) (.9>.1) (.3<.8) (.3>.1) -> 3 of 4
    assert auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    assert auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    # pairs: (.5 vs .5) tie -> .5, (.2 vs .5) -> 0  => .25
    assert auc([1, 1, 0], [0.5, 0.2, 0.5]) == pytest.approx(0.25)


def test_auc_single_class_is_nan():
    assert math.isnan(auc([1, 1], [0.1, 0.2]))


def test_ndcg_hand_computed():
    # the one relevant item is ranked second: DCG = 1/log2(3), ideal DCG = 1
    assert ndcg_one([0, 1, 0], [0.9, 0.5, 0.1]) == pytest.approx(1 / math.log2(3))


def test_ndcg_ties_share_discounts():
    # both items tied: mean gain .5 over discounts 1 + 1/log2(3)
    assert ndcg_one([1, 0], [0.5, 0.5]) == pytest.approx(0.5 * (1 + 1 / math.log2(3)))
    # three-way tie with one positive among 3 rows, then one negative below
    expected = (1 / 3) * (1 + 1 / math.log2(3) + 0.5) / 1.0
    assert ndcg_one([0, 1, 0, 0], [0.7, 0.7, 0.7, 0.1]) == pytest.approx(expected)


def test_ndcg_matches_scikit_learn_with_ties():
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 12))
        y = rng.integers(0, 2, n)
        s = rng.integers(0, 4, n).astype(float)  # many ties
        if y.sum() == 0:
            continue
        assert ndcg_one(y, s) == pytest.approx(ndcg_score([y], [s]))


def test_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = rng.integers(0, 20, 500) / 7.0
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_uauc_skips_single_row_and_single_class_users():
    users = ["a"] * 4 + ["b"] + ["c"] * 2 + ["d"] * 2
    labels = [1, 0, 1, 0] + [1] + [1, 1] + [1, 0]
    scores = [0.9, 0.8, 0.3, 0.1] + [0.5] + [0.2, 0.3] + [0.2, 0.7]
    out = per_user(np.array(users), np.array(labels), np.array(scores))
    assert out["uauc"] == pytest.approx((0.75 + 0.0) / 2)
    # ndcg over the same users: a -> ranking 1,0,1,0 ; d -> 0,1
    ndcg_a = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_d = 1 / math.log2(3)
    assert out["ndcg"] == pytest.approx((ndcg_a + ndcg_d) / 2)
    assert (out["users"], out["users_scored"], out["users_skipped"]) == (4, 2, 2)


def test_evaluate_subsets_and_undefined_values():
    users = np.array([1, 1, 2, 2])
    labels = np.array([1, 0, 1, 1])
    scores = np.array([0.9, 0.1, 0.5, 0.4])
    subsets = np.array(["warm", "warm", "cold", "cold"])
    out = evaluate(users, labels, scores, subsets)
    assert out["overall"]["auc"] == pytest.approx(1.0)
    assert out["warm"]["auc"] == pytest.approx(1.0) and out["warm"]["rows"] == 2
    assert out["cold"]["auc"] is None and out["cold"]["uauc"] is None
    assert out["cold"]["users_skipped"] == 1


def test_evaluate_rejects_nan_scores():
    with pytest.raises(ValueError):
        evaluate([1, 1], [1, 0], [0.1, float("nan")])


def test_gauc_weighs_each_users_auc_by_their_rows():
    from collm_bench.records.metrics import builtin_metrics

    users = ["a"] * 4 + ["b"] + ["d"] * 2
    labels = [1, 0, 1, 0] + [1] + [1, 0]
    scores = [0.9, 0.8, 0.3, 0.1] + [0.5] + [0.2, 0.7]
    out = per_user(np.array(users), np.array(labels), np.array(scores), builtin_metrics())
    # a: AUC 0.75 over 4 rows, d: AUC 0 over 2 rows, b skipped (one row)
    assert out["gauc"] == pytest.approx((0.75 * 4 + 0.0 * 2) / 6)
    assert out["uauc"] == pytest.approx((0.75 + 0.0) / 2)


def test_log_loss_of_sigmoid_logits_by_hand():
    from collm_bench.records.metrics import log_loss

    labels, logits = np.array([1, 0, 1]), np.array([0.0, 2.0, -1.0])
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert log_loss(labels, logits) == pytest.approx(expected)
    assert np.isfinite(log_loss(np.array([1]), np.array([-1000.0])))  # from logits: no log(0)


def test_a_plugin_metric_reaches_records_leaderboards_and_old_records(tmp_path, cli, monkeypatch):
    import json

    from collm_bench import MetricSpec, hookimpl
    from collm_bench.api import registry as plugins_mod
    from collm_bench.records import store as records
    from collm_bench.records import predictions
    class HitRate:
        @hookimpl
        def register_metrics(self, register):
            register(MetricSpec("top1", "Top1", lambda y, s: float(np.asarray(y)[np.argmax(s)]),
                                "label of the best-scored row, per user", per_user=True))

    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    predictions.write_predictions(run_dir, [1, 1, 2, 2], [5, 6, 5, 6], [1, 0, 0, 1], [0.9, 0.2, 0.4, 0.3],
                              ["warm", "warm", "cold", "cold"])
    base = {"run_id": "r", "method": "m", "seed": 0, "dataset": {"name": "d"}, "evaluation": {"rows": 4},
            "timings": {}, "predictions_sha256": predictions.predictions_sha256(run_dir)}
    records.write_record(run_dir, {**base, "metrics": predictions.metrics_from_predictions(run_dir)})
    registry = plugins_mod.load_registry([("hits", HitRate())])
    monkeypatch.setattr(plugins_mod, "_REGISTRY", registry)
    code, _, err = cli(["score", str(run_dir)])  # an older record: not "different", but told what it lacks
    assert code == 0 and "record.json lacks top1" in err
    code, out, _ = cli(["score", "--update", str(run_dir)])
    assert code == 0 and "added to record.json: top1" in out
    overall = json.loads((run_dir / "record.json").read_text())["metrics"]["overall"]
    assert overall["top1"] == pytest.approx(0.5) and overall["gauc"] == pytest.approx(0.5)
    code, md, _ = cli(["leaderboard", "--runs", str(tmp_path / "runs")])
    header = md.splitlines()[4]
    assert "| GAUC " in header and "| LogLoss " in header and "| Top1 " in header
