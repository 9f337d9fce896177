"""collm-bench suite --cluster: each cell a job through submitit. Its local executor runs the real
submission path here (it ignores resources and never calls sbatch); the mapping of a cell's
resources to Slurm's is tested on its own, on the sbatch script submitit writes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit", reason="pip install 'collm-bench[cluster]'")

from collm_bench.suites import cluster  # noqa: E402
from collm_bench.suites.cluster import local_filesystems, submitit_parameters  # noqa: E402
from collm_bench.suites.file import read_suite  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_suite_jobs import _collm_bench, _env, _rows, _suite  # noqa: E402


def test_cells_as_submitit_jobs_write_the_records_of_a_serial_run(tmp_path):
    serial, jobs = _suite(tmp_path / "serial"), _suite(tmp_path / "jobs")
    done = _collm_bench(["suite", str(serial)], _env(tmp_path / "serial", threads=1))
    assert done.returncode == 0, done.stderr[-3000:]
    done = _collm_bench(["suite", str(jobs), "--cluster", "local", "--jobs", "3"], _env(tmp_path / "jobs", threads=1))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 runs:" in done.stdout and "failed" not in done.stdout
    assert "(job 1, local job " in done.stderr               # each cell a submitit job
    want, got = _rows(tmp_path / "serial"), _rows(tmp_path / "jobs")
    assert sorted(got) == sorted(want) and len(want) == 8
    for run_id, (predictions, metrics) in want.items():
        assert got[run_id] == (predictions, metrics), run_id
    logs = list((tmp_path / "jobs" / "runs" / ".submitit").glob("*/*_log.err"))
    assert logs, "submitit keeps each job's log beside the output"


def test_a_job_that_dies_is_submitted_again_and_resumes_from_its_stages(tmp_path):
    path = _suite(tmp_path, steps=400)
    path.write_text(path.read_text().replace("[options.collm]\n", "[options.collm]\npatience = 1000\n"))
    process = subprocess.Popen([sys.executable, "-m", "collm_bench", "suite", str(path), "--cluster", "local",
                                "--entry", "collm", "--seed", "0"], env=_env(tmp_path, threads=1),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "runs" / ".submitit"
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline:   # the job's own process: its id names its folder
        for log in folder.glob("*/*_log.err") if folder.exists() else []:
            if "stage llm-step1: computing" in log.read_text(errors="replace"):   # the encoder is cached by now
                victim = log.parent.name
        time.sleep(0.2)
    assert victim is not None, "the job never started step 1"
    os.kill(int(victim), signal.SIGKILL)                       # a node failure, as far as the suite can tell
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert "submitted again from its cached stages" in err
    assert "1 runs: 1 ran" in out
    second = [log for log in folder.glob("*/*_log.err") if log.parent.name != victim]
    assert len(second) == 1 and "stage encoder-mf: reusing" in second[0].read_text()


def test_resources_reach_the_sbatch_script(tmp_path, monkeypatch):
    # submitit's Slurm executor wants srun on PATH; it is never called to render a script
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    suite = tmp_path / "suite.toml"
    suite.write_text("""
[resources]
gpus = 1
cpus = 8
mem_gb = 64
time_min = 720
partition = "gpu"

[[entry]]
method = "mf"
resources = { gpus = 0, cpus = 2, time_min = 30 }

[[entry]]
method = "collm"
resources = { account = "lab", qos = "high", constraint = "a100" }
""")
    spec = read_suite(suite)
    assert spec.resources == {"gpus": 1, "cpus": 8, "mem_gb": 64.0, "time_min": 720, "partition": "gpu"}
    scripts = []
    for entry in spec.entries:
        executor = submitit.AutoExecutor(folder=tmp_path / "logs" / "%j", cluster="slurm")
        executor.update_parameters(**submitit_parameters({**spec.resources, **entry.resources}, f"collm-bench {entry.name}"))
        scripts.append(executor._executor._make_submission_file_text("python -m x", "uid"))
    mf, collm = scripts
    for line in ("#SBATCH --cpus-per-task=2", "#SBATCH --time=30", "#SBATCH --mem=64GB", "#SBATCH --partition=gpu",
                 "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --job-name=collm-bench_mf"):
        assert line in mf, line
    assert "--gpus-per-node" not in mf          # gpus = 0: none asked
    for line in ("#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8", "#SBATCH --time=720",
                 "#SBATCH --account=lab", "#SBATCH --qos=high", "#SBATCH --constraint=a100"):
        assert line in collm, line


@pytest.mark.parametrize("text, message", [
    ("[resources]\ngpus = -1\n", "gpus must be an integer >= 0, got -1"),
    ("[resources]\nmem_gb = \"lots\"\n", "mem_gb must be a number >= 0.1"),
    ("[resources]\npartition = \"a b\"\n", "partition must be a name without spaces"),
    ("[resources]\nnodes = 2\n", "unknown key 'nodes'"),
])
def test_bad_resources_are_refused_when_the_file_is_read(tmp_path, text, message):
    from collm_bench import UserError

    path = tmp_path / "suite.toml"
    path.write_text(text + "\n[[entry]]\nmethod = \"mf\"\n")
    with pytest.raises(UserError, match=message):
        read_suite(path)


def test_slurm_refuses_a_cache_other_nodes_cannot_see(tmp_path, cli, monkeypatch):
    path = _suite(tmp_path)
    monkeypatch.setattr(cluster, "filesystem_type", lambda p: "ext4")
    code, _, err = cli(["suite", str(path), "--cluster", "slurm"])
    assert code == 2 and "a local filesystem, which jobs on other nodes do not see" in err
    assert "the stage cache" in err and "--local-fs-ok" in err
    monkeypatch.setattr(cluster, "filesystem_type", lambda p: "nfs4")
    assert local_filesystems({"the output root": tmp_path}) == []


def test_resource_options_are_checked_and_need_a_cluster(tmp_path, cli):
    path = _suite(tmp_path)
    code, _, err = cli(["suite", str(path), "--resource", "gpus=1"])
    assert code == 2 and "--resource and --local-fs-ok are for --cluster" in err
    code, _, err = cli(["suite", str(path), "--cluster", "local", "--resource", "gpus=many"])
    assert code == 2 and "gpus takes an integer" in err
    code, _, err = cli(["suite", str(path), "--cluster", "pbs"])
    assert code == 2 and "--cluster must be one of slurm, local" in err
