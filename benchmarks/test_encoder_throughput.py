"""Training throughput (samples/s) of the built-in encoders on ml-1m-collm, default options.

Each benchmark runs ``STEPS`` optimizer steps (BCE, Adam) over shuffled train rows with the
encoder's default batch size, on one torch thread (the reference machine has 2 shared cores,
where 2 threads can be far slower than 1), and records samples/s in ``extra_info``.
Skipped when the prepared data is absent (``COLLM_BENCH_SHARED_DATA`` names another folder holding it).
"""
import time

import numpy as np
import pytest

from collm_bench.testing import shared_dataset_dir

DATA = shared_dataset_dir("ml-1m-collm")
STEPS = 200

pytestmark = pytest.mark.skipif(not (DATA / "manifest.json").exists(), reason=f"no prepared ml-1m-collm at {DATA}")


@pytest.fixture(scope="module")
def data():
    from collm_bench.data.format import load_prepared
    from collm_bench.data.interactions import build_interactions

    return build_interactions(load_prepared(DATA))


@pytest.mark.parametrize("name", ["mf", "lightgcn", "sasrec", "din"])
def test_training_throughput(benchmark, data, name):
    import torch

    from collm_bench.encoders.training import build_encoder, make_batch, seed_everything
    from collm_bench.api.registry import load_registry

    spec = load_registry().get("encoder", name)
    opts = spec.options()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    seed_everything(0)
    model = build_encoder(spec, opts, data)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    labels = torch.from_numpy(data.label.astype(np.float32))
    train = data.rows("train")
    rng = np.random.default_rng(0)
    batches = [rng.choice(train, size=min(opts.batch_size, len(train)), replace=False) for _ in range(STEPS)]

    def run():
        model.train()
        started = time.perf_counter()
        for rows in batches:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(make_batch(data, rows, opts.history_len)), labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started

    try:
        seconds = benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    samples = sum(len(b) for b in batches)
    benchmark.extra_info.update({
        "encoder": name, "steps": STEPS, "batch_size": opts.batch_size, "history_len": opts.history_len,
        "samples_per_second": round(samples / seconds, 1), "threads": 1,
    })
