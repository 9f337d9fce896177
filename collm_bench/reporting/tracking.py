"""Sending run records to trackers (``--log-to NAME``, ``collm-bench log``): each record is read
and checked as every reader checks it, then handed to each named logger
(``collm_bench.api.loggers``). A tracker that fails is said in one line and never fails the
run: the record on disk is the result, the tracker a copy of it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from collm_bench.errors import UserError, unknown_name

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def check_loggers(registry, names: Iterable[str]) -> list[str]:
    """``names`` checked against the registered loggers before any run starts."""
    names = list(dict.fromkeys(names))
    known = registry.components["logger"]
    for name in names:
        if name not in known:
            raise UserError(f"--log-to: {unknown_name('logger', name, known)}")
    return names


def log_runs(registry, run_dirs: Iterable[Path], names: list[str], say: Callable[[str], None]) -> int:
    """Send each record in ``run_dirs`` to each logger of ``names``; the number of failures."""
    from collm_bench.records.store import read_record

    failures = 0
    for run_dir in dict.fromkeys(Path(d) for d in run_dirs):
        try:
            record = read_record(run_dir)
        except UserError as exc:
            say(f"not logged: {exc}")
            failures += 1
            continue
        for name in names:
            entry = registry.components["logger"][name]
            try:
                where = entry.spec.log(dict(record.data), run_dir)
                say(f"logged {run_dir.name} to {name}: {where}")
            except ImportError as exc:
                need = f" (pip install {entry.spec.requires!r})" if entry.spec.requires else ""
                say(f"not logged to {name}: {exc}{need}")
                failures += 1
            except Exception as exc:  # noqa: BLE001 - a tracker never fails a finished run
                from collm_bench.api.registry import describe

                say(f"not logged {run_dir.name} to {name}: {describe(exc)}")
                failures += 1
    return failures


def log_written(names: list[str], run_dirs: Iterable[Path]) -> None:
    """The CLI's ``--log-to``: the records a run or suite just wrote, to each named tracker."""
    if not names:
        return
    from collm_bench.api.registry import get_registry
    from collm_bench.progress import say

    log_runs(get_registry(), run_dirs, names, say)
