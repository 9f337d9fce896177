"""One cell of ``collm-bench suite --jobs N``, in a process of its own: ``python -m
collm_bench.suites._worker REQUEST.json RESULT.json LEVEL``.

It runs the request as ``collm-bench run`` would (``collm_bench.runner.run``) and writes where
its records went, or the one-line error, to ``RESULT.json``. The parent (``suites.jobs``) has
set its threads and its device in the environment before this process imported torch.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # before torch (collm_bench.cli says why)

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def request_to_json(request) -> dict:
    """A ``RunRequest`` as JSON (its paths as strings)."""
    import dataclasses

    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(request).items()}


def request_from_json(data: dict):
    from collm_bench.runner import RunRequest

    return RunRequest(**{**data, "out": Path(data["out"])})


def run_request(request: dict, level: int) -> dict:
    """Run one cell; ``{"run_dir", "companions"}``, or ``{"error"}`` for a run that failed by
    itself (a bad option, a method's exception): said in one line, as the serial suite says it.
    Under Slurm its threads follow the job's CPUs."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and "torch" not in sys.modules:
        os.environ.setdefault("OMP_NUM_THREADS", cpus)
        os.environ.setdefault("MKL_NUM_THREADS", cpus)
    from collm_bench import progress
    from collm_bench.errors import UserError

    progress.set_level(int(level))
    try:
        from collm_bench.api.registry import get_registry
        from collm_bench.runner import run

        done = run(request_from_json(request), registry=get_registry(), progress=progress.say)
        return {"run_dir": str(done.run_dir), "companions": [str(path) for path, _ in done.companions]}
    except UserError as exc:
        return {"error": str(exc)}
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - one line, as the serial suite gives it
        from collm_bench.api.registry import describe

        return {"error": describe(exc)}


def main(argv: list[str]) -> int:
    import signal

    from collm_bench.cli import Terminated, _terminate

    request_file, result_file, level = argv
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_request(json.loads(Path(request_file).read_text()), int(level))
        code = 1 if "error" in result else 0
    except KeyboardInterrupt:
        result, code = {"stopped": "Ctrl-C (SIGINT)"}, 130
    except Terminated:
        result, code = {"stopped": "SIGTERM"}, 143
    Path(result_file).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
