"""collm-bench suite --jobs N: cells in processes of their own, the same records as a serial run."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from collm_bench.suites.jobs import Slots, cpu_count, visible_gpus
from collm_bench.testing import tiny_dataset
from test_suite import FAST_LLM

# test_suite's tiny LLM suite over two seeds: CoLLM, its encoder, TALLRec and an ensemble over CoLLM
# and MF: stages shared between cells (the encoder, step 1, TALLRec's scores), companion rows, and
# an ensemble that must wait for its members; the encoder and TALLRec listed first, the budget
# of steps a parameter.
SUITE = (FAST_LLM.replace("full_test = true\ntable = 2", "seeds = [0, 1]\nfull_test = true")
         .replace("max_steps = 4", "max_steps = {steps}")
         .replace('[[entry]]\nmethod = "collm"\n\n[[entry]]\nmethod = "mf"\n\n[[entry]]\nmethod = "tallrec"\n',
                  '[[entry]]\nmethod = "mf"\n\n[[entry]]\nmethod = "tallrec"\n\n[[entry]]\nmethod = "collm"\n'))
assert SUITE.count("{steps}") == 3 and "seeds = [0, 1]" in SUITE and SUITE.index('"mf"') < SUITE.index('"collm"')


def _suite(folder: Path, steps: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tiny_dataset(folder / "tiny")
    path = folder / "suite.toml"
    path.write_text(textwrap.dedent(SUITE.format(steps=steps)))
    return path


def _env(folder: Path, threads: int | None = None) -> dict[str, str]:
    env = {**os.environ, "COLLM_BENCH_CACHE": str(folder / "stages"), "COLLM_BENCH_DATA": str(folder / "data"),
           "COLLM_BENCH_MODELS": str(folder / "models"), "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def _collm_bench(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "collm_bench", *args], env=env, capture_output=True, text=True,
                          timeout=900, **kw)


def _rows(folder: Path) -> dict[str, tuple[bytes, dict]]:
    out = {}
    for record in sorted((folder / "runs").glob("*/record.json")):
        data = json.loads(record.read_text())
        out[record.parent.name] = ((record.parent / "predictions.csv").read_bytes(), data["metrics"])
    return out


def test_jobs_write_the_records_and_predictions_of_a_serial_run(tmp_path):
    threads = max(1, cpu_count() // 2)   # what each of 2 jobs gets; the serial run uses as many
    serial, parallel = _suite(tmp_path / "serial"), _suite(tmp_path / "parallel")
    done = _collm_bench(["suite", str(serial)], _env(tmp_path / "serial", threads))
    assert done.returncode == 0, done.stderr[-3000:]
    done = _collm_bench(["suite", str(parallel), "--jobs", "2"], _env(tmp_path / "parallel"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 runs:" in done.stdout and "failed" not in done.stdout
    assert "[job 1]" in done.stderr and "[job 2]" in done.stderr            # a log gets every job's lines
    assert f"{threads} thread(s)" in done.stderr
    want, got = _rows(tmp_path / "serial"), _rows(tmp_path / "parallel")
    assert len(want) == 8 and sorted(got) == sorted(want)                    # same run ids
    for run_id, (predictions, metrics) in want.items():
        assert got[run_id][0] == predictions, run_id                        # bitwise
        assert got[run_id][1] == metrics, run_id
    # Each stage was computed once, although CoLLM needs the encoder and step 1 that other
    # cells compute: one folder per key, and as many "computing" lines as folders.
    for stage in ("encoder-mf", "llm-step1"):
        folders = [p for p in (tmp_path / "parallel" / "stages" / stage).iterdir() if p.is_dir()]
        assert len(folders) == 2, stage                                      # one per seed
        assert done.stderr.count(f"stage {stage}: computing") == 2, stage
    again = _collm_bench(["suite", str(parallel), "--jobs", "2"], _env(tmp_path / "parallel"))
    assert again.returncode == 0 and "8 runs: 8 skipped" in again.stdout


def test_ctrl_c_stops_every_job_and_says_how_to_resume(tmp_path):
    path = _suite(tmp_path, steps=400)   # long enough to be stopped in the middle
    env = _env(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "collm_bench", "suite", str(path), "--jobs", "2"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as from a terminal
    seen = ""
    deadline = time.monotonic() + 300
    while seen.count("running ") < 2 and time.monotonic() < deadline:   # two jobs under way
        line = process.stderr.readline()
        if not line:
            break
        seen += line
    assert seen.count("running ") >= 2, seen
    process.send_signal(signal.SIGINT)        # to the suite only: it must stop its jobs itself
    _, err = process.communicate(timeout=120)
    err = seen + err
    assert process.returncode == 130, err[-3000:]
    assert "stopped 2 job(s)" in err
    assert "to resume: collm-bench suite" in err and "--jobs 2" in err
    leftovers = [p for p in (tmp_path / "stages").rglob(".*.partial-*")]
    assert leftovers == []                    # no partial stage is left to be used later


def test_slots_split_the_cores_and_give_each_job_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    said = []
    slots = Slots.for_machine(4, said.append)
    assert slots.jobs == 2 and said and "2 GPU(s)" in said[0]
    assert [slots.environment(i)["CUDA_VISIBLE_DEVICES"] for i in range(2)] == ["3", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    slots = Slots.for_machine(2, said.append)
    env = slots.environment(1)
    assert slots.threads == max(1, cpu_count() // 2) and env["OMP_NUM_THREADS"] == str(slots.threads)
    assert "CUDA_VISIBLE_DEVICES" not in env or env["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_jobs_must_be_positive(tmp_path, cli, bad):
    path = _suite(tmp_path)
    code, _, err = cli(["suite", str(path), "--jobs", bad])
    assert code == 2 and "--jobs must be a positive number" in err
