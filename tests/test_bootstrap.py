"""The user bootstrap against cases computed by hand and by brute force."""
import numpy as np
import pytest

from collm_bench.records.bootstrap import Resamples, auc_samples, draw, intervals, paired_difference, uauc_samples
from collm_bench.records.metrics import auc


def test_a_resample_by_hand():
    # users 0 (rows 0-1) and 1 (rows 2-3); a resample that draws user 1 twice and user 0 never
    users, labels, scores = np.array([0, 0, 1, 1]), np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.2, 0.4])
    draws = Resamples(users, np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]]))
    # only user 1's rows, twice: its positive (0.2) below its negative (0.4): AUC 0
    # both once: pairs (0.9>0.1) (0.9>0.4) (0.2>0.1) (0.2<0.4): 3/4; user 0 alone: 1
    assert auc_samples(draws, labels, scores).tolist() == [0.0, 0.75, 1.0]
    assert uauc_samples(draws, labels, scores).tolist() == [0.0, 0.5, 1.0]


def test_ties_count_half_and_weights_equal_duplicated_rows():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 30, 400)
    labels = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400), 1)            # many ties
    draws = draw(users, 5, seed=7)
    for b, value in enumerate(auc_samples(draws, labels, scores)):
        rows = np.concatenate([np.tile(np.flatnonzero(draws.users == u), int(c)) for u, c in enumerate(draws.counts[b])])
        assert value == pytest.approx(auc(labels[rows], scores[rows]))


def test_identical_score_columns_are_never_different():
    rng = np.random.default_rng(0)
    users, labels = rng.integers(0, 50, 1000), rng.integers(0, 2, 1000)
    scores = rng.normal(size=1000)
    assert paired_difference(users, labels, scores, scores.copy()) == (0.0, 0.0)
    assert paired_difference(users, labels, scores, scores.copy(), metric="uauc") == (0.0, 0.0)


def test_intervals_are_seeded_and_cover_the_point_estimate():
    rng = np.random.default_rng(1)
    users, labels = rng.integers(0, 80, 3000), rng.integers(0, 2, 3000)
    scores = rng.normal(size=3000) + 0.5 * labels
    a, b = intervals(users, labels, scores, seed=0), intervals(users, labels, scores, seed=0)
    assert a == b and a["auc"][0] < auc(labels, scores) < a["auc"][1]
    better = paired_difference(users, labels, scores + labels, scores)   # a clearly better column
    assert better[0] > 0


def test_the_draw_does_not_depend_on_the_type_of_the_ids():
    """Numbers and text sort differently (2 < 10, "10" < "2"): users are numbered by first
    appearance, so a file read with ids as text draws the users it drew with ids as numbers."""
    from collm_bench.records.bootstrap import intervals

    rng = np.random.default_rng(3)
    users = rng.integers(1, 40, size=400)
    labels = rng.integers(0, 2, size=400)
    scores = rng.normal(size=400) + labels
    as_numbers = intervals(users, labels, scores, resamples=50)
    as_text = intervals(users.astype(str), labels, scores, resamples=50)
    assert as_numbers == as_text and as_numbers["users"] == "first appearance"


def test_samples_drawn_another_way_are_not_paired():
    from collm_bench.reporting.leaderboard import render_records

    def record(name, auc, users):
        return {"run_id": name, "method": name, "seed": 0, "dataset": {"name": "toy", "manifest_sha256": "0" * 64},
                "evaluation": {"rows": 10, "total_rows": 10, "sampled": False}, "timings": {},
                "metrics": {"overall": {"auc": auc}},
                "intervals": {"auc": [auc - .1, auc + .1], "users": users, "seed": 0, "resamples": 30,
                              "samples": {"auc": [auc + d for d in (-.01, 0, .01)] * 10}}}

    same = render_records([record("a", .70, "first appearance"), record("b", .70, "first appearance")])
    other = render_records([record("a", .70, "first appearance"), record("b", .70, None)])
    assert "b ≈" in same and "b ≈" not in other
