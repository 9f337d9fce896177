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
    monkeypatch.setenv("COLLM_BENCH_MODELS", str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def ml1m_collm():
    """The official CoLLM ML-1M release (kept outside the project, see ../shared/data)."""
    from collm_bench.testing import shared_dataset_dir

    path = shared_dataset_dir("ml-1m-collm")
    if not (path / "manifest.json").exists():
        pytest.skip(f"{path} is absent (the official CoLLM ML-1M release lives in shared/, not in the project)")
    return path


@pytest.fixture
def cli(capsys):
    """``cli(args) -> (exit code, stdout, stderr)`` of ``collm-bench args`` run in-process."""
    from collm_bench.cli import main

    def run(args):
        code = 0
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
