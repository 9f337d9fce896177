"""``collm-bench suite --jobs 2`` against the same suite run serially, in one run of this file,
beside the bound that the plan's critical path allows.

The suite (``$COLLM_BENCH_JOBS_SUITE``, default the ml-100k board's) runs twice from empty stage
caches (the prepared datasets are shared): serially with the machine's threads, then with
``--jobs 2`` (half the threads each). The bound comes from the serial run's records: each run's
chain is the seconds of every stage it uses (whoever computed it) plus its scoring, and with two
jobs the suite takes at least max(longest chain, total / 2). Long: about an hour on a 2-core CPU
(``make bench ARGS='-k suite_jobs'``).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = Path(os.environ.get("COLLM_BENCH_JOBS_SUITE", ROOT / "leaderboards" / "suites" / "ml-100k.toml"))


def _run(args, cache: Path, out: Path) -> float:
    env = {**os.environ, "COLLM_BENCH_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "collm_bench", "-q", "suite", str(SUITE), "--out", str(out), *args],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return seconds


def critical_path(out: Path) -> tuple[float, float, str]:
    """(longest chain, total work, the run it belongs to) from the records in ``out``: a stage
    counts its ``seconds`` (those of the process that computed it, also where a record reused it)
    once in the total, and in the chain of every run that uses it."""
    work: dict[str, float] = {}
    chains: dict[str, float] = {}
    for path in sorted(out.glob("*/record.json")):
        record = json.loads(path.read_text())
        chain = 0.0
        for name, stage in record["timings"]["stages"].items():
            seconds = float(stage.get("seconds") or 0.0)
            work[stage.get("key") or f"{record['run_id']}/{name}"] = seconds
            chain += seconds
        chains[record["run_id"]] = chain
    longest = max(chains, key=chains.get)
    return chains[longest], sum(work.values()), longest


@pytest.mark.skipif(not SUITE.exists(), reason=f"{SUITE} is absent")
def test_suite_with_two_jobs_against_serial(benchmark, tmp_path):
    serial_out, parallel_out = tmp_path / "serial", tmp_path / "parallel"
    serial = _run([], tmp_path / "cache-serial", serial_out)
    parallel = benchmark.pedantic(lambda: _run(["--jobs", "2"], tmp_path / "cache-parallel", parallel_out),
                                  rounds=1, iterations=1)
    longest, total, which = critical_path(serial_out)
    bound = max(longest, total / 2)
    benchmark.extra_info.update({
        "suite": str(SUITE.relative_to(ROOT) if SUITE.is_relative_to(ROOT) else SUITE),
        "cpus": os.cpu_count(), "serial_seconds": round(serial, 1), "jobs2_seconds": round(parallel, 1),
        "speedup": round(serial / parallel, 3),
        "critical_path_seconds": round(longest, 1), "critical_path_run": which,
        "stage_work_seconds": round(total, 1), "speedup_bound": round(serial / bound, 3),
    })
