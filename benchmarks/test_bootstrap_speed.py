"""The user bootstrap's speed: 1,000 resamples of a board's 22k rows (ml-100k's test split size)
should take seconds, so that every run records its intervals."""
import time

import numpy as np


def test_bootstrap_of_22k_rows(benchmark):
    from collm_bench.records.bootstrap import intervals, paired_difference

    rng = np.random.default_rng(0)
    users = rng.integers(0, 900, 22_015)
    labels = rng.integers(0, 2, 22_015)
    scores = rng.normal(size=22_015) + 0.3 * labels
    result = benchmark.pedantic(lambda: intervals(users, labels, scores), rounds=1, iterations=1)
    started = time.perf_counter()
    paired_difference(users, labels, scores, scores + rng.normal(scale=0.1, size=len(scores)))
    benchmark.extra_info.update({"rows": len(users), "users": 900, "resamples": 1000, "auc_interval": result["auc"],
                                 "paired_seconds": round(time.perf_counter() - started, 2)})
