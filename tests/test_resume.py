"""A long training stage interrupted at any step resumes inside itself, to exactly the result of
an uninterrupted run (tiny random Llama, TALLRec's step 1 with a checkpoint after every step)."""
import numpy as np
import pytest
from safetensors.torch import load_file

from collm_bench.plugins import load_registry
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset

FAST = {"max_steps": "8", "eval_every": "2", "batch_size": "8", "history_titles": "3", "warmup_steps": "2",
        "patience": "10", "lr": "0.05"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _tallrec(registry, dataset, out, cache):
    return run(RunRequest(method="tallrec", dataset=str(dataset), backbone="tiny-llama", out=out, cache_dir=str(cache),
                          options=FAST), registry=registry, progress=lambda m: None)


def _step1(cache):
    (path,) = list(cache.glob("llm-step1/*/step1.safetensors"))
    return load_file(path)


@pytest.mark.parametrize("stop_at", [3, 6, 8])
def test_an_interrupted_step1_resumes_to_the_uninterrupted_result(stop_at, registry, tmp_path, monkeypatch):
    from collm_bench.llmrec import training as llm_pipeline

    tiny_dataset(tmp_path / "tiny")
    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", "0")   # a checkpoint after every step
    reference = _tallrec(registry, tmp_path / "tiny", tmp_path / "a", tmp_path / "cache-a")
    assert reference.record["training"]["llm-step1"]["best_step"] == 4  # the best state is a trained one

    real, calls = llm_pipeline.bce_loss, [0]

    def dies(*args, **kwargs):  # the process is killed during step ``stop_at``
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(llm_pipeline, "bce_loss", dies)
    with pytest.raises(KeyboardInterrupt):
        _tallrec(registry, tmp_path / "tiny", tmp_path / "b", tmp_path / "cache-b")
    (resume,) = list((tmp_path / "cache-b" / "llm-step1").glob(".*.resume"))
    assert (resume / "checkpoint.json").exists()
    monkeypatch.setattr(llm_pipeline, "bce_loss", real)
    said = []
    resumed = run(RunRequest(method="tallrec", dataset=str(tmp_path / "tiny"), backbone="tiny-llama",
                             out=tmp_path / "b", cache_dir=str(tmp_path / "cache-b"), options=FAST),
                  registry=registry, progress=said.append)
    assert any(f"resuming at step {stop_at - 1}" in m for m in said)
    a, b = _step1(tmp_path / "cache-a"), _step1(tmp_path / "cache-b")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    same = ("best_step", "best_valid_auc", "steps_run", "stopped", "valid_curve")
    step1 = [{k: r.record["timings"]["stages"]["llm-step1"].get(k) for k in ("key",)} for r in (resumed, reference)]
    assert step1[0] == step1[1]
    ours, theirs = resumed.record["training"]["llm-step1"], reference.record["training"]["llm-step1"]
    assert {k: ours[k] for k in same} == {k: theirs[k] for k in same}
    assert np.array_equal(np.loadtxt(resumed.run_dir / "predictions.csv", delimiter=",", skiprows=1, usecols=3),
                          np.loadtxt(reference.run_dir / "predictions.csv", delimiter=",", skiprows=1, usecols=3))
    assert not resume.exists()  # spent once the stage is complete


def test_a_damaged_checkpoint_is_ignored_and_said(tmp_path, capsys):
    from collm_bench.checkpoints import Checkpointer

    saver = Checkpointer(tmp_path)
    import torch

    saver.save({"w": torch.ones(2)}, {"step": 3})
    assert saver.load()[1] == {"step": 3}
    (tmp_path / "checkpoint.safetensors").write_bytes(b"damaged")
    assert saver.load() is None and "checkpoint not usable" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "-1", "inf", "nan"])
def test_a_bad_checkpoint_interval_is_one_line(value, monkeypatch):
    from collm_bench import UserError
    from collm_bench.checkpoints import interval_seconds

    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", value)
    with pytest.raises(UserError, match="COLLM_BENCH_CHECKPOINT_SECONDS=.*expected a finite number of seconds"):
        interval_seconds()
