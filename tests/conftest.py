import os

# Set before torch is imported anywhere: no hub access, no spin-waiting OpenMP threads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import pytest


@pytest.fixture(autouse=True)
def _private_caches(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's dataset or stage caches."""
    monkeypatch.setenv("COLLM_BENCH_CACHE", str(tmp_path_factory.mktemp("stages")))
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path_factory.mktemp("datasets")))
