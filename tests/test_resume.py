"""A long training stage interrupted at any step resumes inside itself, to exactly the result of
an uninterrupted run (tiny random Llama, TALLRec's step 1 with a checkpoint after every step)."""
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from collm_bench.api.registry import load_registry
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset

# readout pinned: with it this run's best state is a middle one (step 4 of 8), so a resume after
# it must carry the best-so-far state, not only the last
FAST = {"max_steps": "8", "eval_every": "2", "batch_size": "8", "history_titles": "3", "warmup_steps": "2",
        "patience": "10", "lr": "0.05", "readout": "yes"}


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
    from collm_bench.cache.checkpoints import Checkpointer

    saver = Checkpointer(tmp_path)
    import torch

    saver.save({"w": torch.ones(2)}, {"step": 3})
    assert saver.load()[1] == {"step": 3}
    (tmp_path / "checkpoint.safetensors").write_bytes(b"damaged")
    assert saver.load() is None and "checkpoint not usable" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "-1", "inf", "nan"])
def test_a_bad_checkpoint_interval_is_one_line(value, monkeypatch):
    from collm_bench import UserError
    from collm_bench.cache.checkpoints import interval_seconds

    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", value)
    with pytest.raises(UserError, match="COLLM_BENCH_CHECKPOINT_SECONDS=.*expected a finite number of seconds"):
        interval_seconds()


def test_an_interrupted_scoring_resumes_to_the_uninterrupted_scores(registry, tmp_path, monkeypatch):
    """Scoring the test rows (its own stage, hours with a real LLM on a CPU) killed mid-way: the
    rerun reuses the saved batches, scores only the rest, and writes the same predictions."""
    import shutil

    from collm_bench.llm import scorer as llm
    tiny_dataset(tmp_path / "tiny")
    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", "0")   # scores saved after every batch
    options = {**FAST, "score_batch_size": "4"}

    def tallrec(out, cache):
        return run(RunRequest(method="tallrec", dataset=str(tmp_path / "tiny"), backbone="tiny-llama", out=out,
                              cache_dir=str(cache), options=options), registry=registry, progress=lambda m: None)

    real, calls, stop_at = llm._score_batch, [0], None   # stop_at: the call that is killed

    def counted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    reference = tallrec(tmp_path / "a", tmp_path / "cache-a")
    monkeypatch.setattr(llm, "_score_batch", counted)
    for cache in ("cache-b", "cache-c"):   # step 1 done: the scoring stage is all that is left
        shutil.copytree(tmp_path / "cache-a" / "llm-step1", tmp_path / cache / "llm-step1")
    tallrec(tmp_path / "c", tmp_path / "cache-c")
    batches = calls[0]
    assert batches > 4
    calls[0], stop_at = 0, 4   # killed while scoring the fourth batch
    with pytest.raises(KeyboardInterrupt):
        tallrec(tmp_path / "b", tmp_path / "cache-b")
    (resume,) = list((tmp_path / "cache-b" / "llm-scores").glob(".*.resume"))
    calls[0], stop_at = 0, None
    (note,) = list(resume.glob("process-*.json"))   # the killed process worked 100 s on it, as its note says
    started = json.loads(note.read_text())["started"]
    note.write_text(json.dumps({"started": started - 100, "ended": started}))
    resumed = tallrec(tmp_path / "b", tmp_path / "cache-b")
    assert calls[0] == batches - 3   # the three saved batches are not scored again
    # the record's inference time is both processes' scoring, not the last one's alone
    assert resumed.record["timings"]["inference_seconds"] >= 100 > reference.record["timings"]["inference_seconds"]
    assert np.array_equal(np.loadtxt(resumed.run_dir / "predictions.csv", delimiter=",", skiprows=1, usecols=3),
                          np.loadtxt(reference.run_dir / "predictions.csv", delimiter=",", skiprows=1, usecols=3))
    assert not resume.exists()


def test_scoring_resumes_only_from_batches_that_match(tmp_path, capsys, monkeypatch):
    """Saved scores are reused batch by batch while the rows match; from the first mismatch on
    the rest is scored again (said), never mixed up."""
    import torch

    from collm_bench.llm.scorer import score_batches

    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", "0")

    class Sums(torch.nn.Module):   # a scorer whose score is the sum of a row's ids
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, input_ids, attention_mask, embeds=None, positions=None):
            self.calls += 1
            return (input_ids.float() * self.w).sum(1)

    def batches(order):
        for rows in order:
            yield {"rows": np.array(rows), "input_ids": torch.tensor([[r, 1] for r in rows]),
                   "attention_mask": torch.ones(len(rows), 2, dtype=torch.long)}

    scorer = Sums()
    first = score_batches(scorer, batches([[0, 1], [2, 3], [4]]), resume=tmp_path)
    assert first.tolist() == [1, 2, 3, 4, 5] and scorer.calls == 3
    scorer.calls = 0
    again = score_batches(scorer, batches([[0, 1], [2, 3], [4]]), resume=tmp_path)
    assert again.tolist() == first.tolist() and scorer.calls == 0          # all three batches were saved
    scorer.calls = 0
    other = score_batches(scorer, batches([[0, 1], [3, 2], [4]]), resume=tmp_path)
    assert other.tolist() == first.tolist() and scorer.calls == 2          # the second batch differs
    assert "stop matching the batches at batch 2" in capsys.readouterr().err

    from collm_bench.cache.checkpoints import Checkpointer

    Checkpointer(tmp_path).save({"w": torch.ones(2)}, {"step": 3})   # a training checkpoint, not scores
    scorer.calls = 0
    fresh = score_batches(scorer, batches([[0, 1], [2, 3], [4]]), resume=tmp_path)
    assert fresh.tolist() == first.tolist() and scorer.calls == 3
    assert "not a checkpoint of scores" in capsys.readouterr().err


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_ends_a_run_with_one_line_that_says_how_to_resume(tmp_path, signal_name, code):
    """SIGTERM or Ctrl-C in the middle of a stage: exit 143 / 130, one last line saying what is
    kept and the command that resumes, and no unfinished stage left to be used later."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tiny_dataset(tmp_path / "tiny")
    cache = tmp_path / "cache"
    args = ["run", "--method", "tallrec", "--backbone", "tiny-llama", "--dataset", str(tmp_path / "tiny"),
            "--out", str(tmp_path / "runs"), "--cache-dir", str(cache), "--set", "max_steps=100000",
            "--set", "eval_every=100000", "--set", "batch_size=8", "--set", "history_titles=2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLLM_BENCH_CHECKPOINT_SECONDS": "3600"}
    # SIGINT as a terminal delivers it: a shell starting the tests in the background (nohup ... &)
    # leaves it ignored, and Python then keeps it ignored in the child
    proc = subprocess.Popen([sys.executable, "-m", "collm_bench", "--verbose", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stderr:   # wait until step 1 is training
        lines.append(line)
        if "stage llm-step1: computing" in line:
            break
    time.sleep(2)
    proc.send_signal(getattr(signal, signal_name))
    rest = proc.stderr.read().strip().splitlines()
    assert proc.wait(timeout=60) == code, "".join(lines) + "\n".join(rest)
    assert rest[-1].startswith(f"stopped by {'SIGTERM' if code == 143 else 'Ctrl-C (SIGINT)'}: finished stages")
    assert rest[-1].endswith("to resume: collm-bench --verbose " + " ".join(args))
    step1 = cache / "llm-step1"
    assert not [p for p in step1.iterdir() if not p.name.startswith(".")]       # no stage that looks complete
    assert not [p for p in step1.iterdir() if ".partial-" in p.name]             # and no half-written one


@pytest.mark.parametrize("field, value, problem", [
    ("step", 10 ** 9, "step is '1000000000', expected a step from 1 to the budget of 8"),
    ("step", "3", "step is '3', expected a step from 1"),
    ("evals_without_gain", -1, "evals_without_gain is '-1', expected a whole number >= 0"),
    ("best", "param", "best is 'param', expected null or a list of parameter names"),
    ("result", None, "result is 'None', expected an object"),
    ("best", ["not-a-parameter"], "a tensor it names is 'best.not-a-parameter', expected a tensor of"),
    ("scheduler", [], "scheduler is '[]', expected an object"),
])
def test_a_checkpoint_state_no_run_could_write_is_one_line(field, value, problem, registry, tmp_path, monkeypatch):
    import json

    from collm_bench.errors import UserError
    from collm_bench.llmrec import training as llm_pipeline

    tiny_dataset(tmp_path / "tiny")
    monkeypatch.setenv("COLLM_BENCH_CHECKPOINT_SECONDS", "0")
    real, calls = llm_pipeline.bce_loss, [0]

    def dies(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(llm_pipeline, "bce_loss", dies)
    with pytest.raises(KeyboardInterrupt):
        _tallrec(registry, tmp_path / "tiny", tmp_path / "out", tmp_path / "cache")
    monkeypatch.setattr(llm_pipeline, "bce_loss", real)
    (resume,) = list((tmp_path / "cache" / "llm-step1").glob(".*.resume"))
    payload = json.loads((resume / "checkpoint.json").read_text())
    payload["state"][field] = value   # its tensors still match: only the JSON is crafted
    (resume / "checkpoint.json").write_text(json.dumps(payload))
    with pytest.raises(UserError) as info:
        _tallrec(registry, tmp_path / "tiny", tmp_path / "out", tmp_path / "cache")
    message = str(info.value)
    assert message.startswith(f"{resume / 'checkpoint.json'}: {problem}") and "\n" not in message
    assert f"delete {resume} and the stage starts afresh" in message
