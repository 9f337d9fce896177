import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import time  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def matmul_peak():
    """``peak()``: the fp32 FLOP/s of a 1024^3 ``torch.matmul`` on this process's threads, best of
    8, measured when called (in the same run as what it bounds)."""
    def peak(size: int = 1024, reps: int = 8) -> float:
        import torch

        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(reps):
            started = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - started)
        return 2 * size ** 3 / best

    return peak
