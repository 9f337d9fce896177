"""Acceptance: each built-in encoder, trained with its default options (seed 0), reaches the
paper's ML-1M test AUC (Table II) minus 0.01. Slow (minutes, SASRec most of it): ``-m slow``.

Options are chosen on valid AUC only; test AUC is read once, here. Set
``COLLM_BENCH_SHARED_DATA`` to the folder holding another copy of ``ml-1m-collm``.
"""
import json
import time

import pytest

from collm_bench.testing import shared_dataset_dir

DATA = shared_dataset_dir("ml-1m-collm")
PAPER_AUC = {"mf": 0.6482, "lightgcn": 0.5959, "sasrec": 0.7078, "din": 0.7166}
TOLERANCE = 0.01

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "manifest.json").exists(), reason=f"no prepared ml-1m-collm at {DATA}"),
]


@pytest.fixture(scope="module")
def data():
    from collm_bench.data.format import load_prepared
    from collm_bench.data.interactions import build_interactions

    return build_interactions(load_prepared(DATA))


@pytest.mark.parametrize("name", list(PAPER_AUC))
def test_default_options_reach_paper_auc(name, data):
    import torch

    from collm_bench.encoders.training import build_encoder, fit, predict, seed_everything, training_options
    from collm_bench.records.metrics import evaluate
    from collm_bench.api.registry import load_registry

    spec = load_registry().get("encoder", name)
    opts = spec.options()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the numbers below were measured with one thread
    try:
        seed_everything(0)
        model = build_encoder(spec, opts, data)
        result = fit(model, data, seed=0, **training_options(spec, opts))
        test = data.rows("test")
        started = time.perf_counter()
        scores = predict(model, data, test, history_len=opts.history_len)
        inference = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    metrics = evaluate(data.user[test], data.label[test], scores, data.subset[test])
    print(json.dumps({
        "encoder": name, "valid_auc": round(result.best_valid_auc, 4), "best_epoch": result.best_epoch,
        "epochs": result.epochs_run, "train_s": round(result.train_seconds, 1),
        "train_samples_per_s": round(result.samples_per_second), "test_rows_per_s": round(len(test) / inference),
        **{f"test_{m}": metrics["overall"][m] for m in ("auc", "uauc", "ndcg")},
    }))
    floor = PAPER_AUC[name] - TOLERANCE
    assert metrics["overall"]["auc"] >= floor, f"{name}: test AUC {metrics['overall']['auc']:.4f} < {floor:.4f}"
