"""Tests a plugin author writes: the conformance kit does the heavy lifting."""
import numpy as np

from collm_bench.testing import check_encoder, check_method, load_registry

import collm_bench_popularity


def test_follows_the_encoder_contract():
    registry = load_registry([("popularity", collm_bench_popularity)], entry_points=False)
    check_encoder(registry.get("encoder", "popularity"))


def test_runs_as_a_leaderboard_row():
    registry = load_registry([("popularity", collm_bench_popularity)], entry_points=False)
    record = check_method(registry, "popularity", encoder_options={"max_epochs": "3"})
    assert record["method"] == "popularity"


def test_popular_items_score_higher_for_a_default_user(collm_tiny_dataset):
    from collm_bench.encoders.training import build_encoder
    from collm_bench.data.interactions import build_interactions

    spec = load_registry([("popularity", collm_bench_popularity)], entry_points=False).get("encoder", "popularity")
    data = build_interactions(collm_tiny_dataset)
    model = build_encoder(spec, spec.options(), data)
    import torch

    items = torch.arange(1, data.n_items)
    scores = model({"user": torch.ones_like(items), "item": items}).detach().numpy()
    train = data.rows("train")
    positives = np.bincount(data.item[train], weights=data.label[train], minlength=data.n_items)[1:]
    # with equal positive rates, more train rows -> higher score; overall positively correlated
    assert np.corrcoef(scores, positives)[0, 1] > 0
