"""``collm-bench suite FILE --jobs N``: up to N cells at once on one machine, each in a process
of its own (``suites._worker``).

- Threads: each job gets ``cpus // N`` threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``), so N
  jobs never oversubscribe the cores; on a GPU machine each job sees one GPU of its own
  (``CUDA_VISIBLE_DEVICES``), and N is at most the number of GPUs.
- Order: a cell starts once its members have run (an ensemble averages their predictions);
  among the cells that may start, the plan's order, preferring one that shares no dataset and
  seed with the encoder or backbone of a running job (CoLLM waits for its encoder's and
  TALLRec's stages rather than beside them). Two jobs that need one stage still compute it
  once: the stage cache locks a stage while it is computed (``cache.stages``).
- Each job's latest line on its own line of the terminal (a log gets every line, prefixed
  ``[job k]``); the suite's table at the end, as a serial suite prints it.
- Ctrl-C or SIGTERM stops every job (each keeps its finished stages and written records, as a
  run does) and the command that resumes is printed; a failed cell stops new starts (running
  ones finish) unless ``--keep-going``.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from collm_bench.errors import UserError
from collm_bench.suites.plan import Cell, Outcome, Runner

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def visible_gpus() -> list[str]:
    """The GPUs a job may be given, found without importing torch: ``CUDA_VISIBLE_DEVICES``
    when set, else what ``nvidia-smi -L`` lists (none on a machine without it)."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in listing.splitlines() if l.startswith("GPU "))]


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


@dataclass
class Slots:
    """What each of N jobs may use: threads, and a GPU when the machine has them."""

    jobs: int
    threads: int
    gpus: list[str] = field(default_factory=list)

    @classmethod
    def for_machine(cls, jobs: int, say: Callable[[str], None]) -> "Slots":
        gpus = visible_gpus()
        if gpus and jobs > len(gpus):
            say(f"--jobs {jobs}, but {len(gpus)} GPU(s) here: {len(gpus)} jobs, one GPU each")
            jobs = len(gpus)
        return cls(jobs=jobs, threads=max(1, cpu_count() // jobs), gpus=gpus[:jobs])

    def environment(self, slot: int) -> dict[str, str]:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot]
        return env


@dataclass
class _Job:
    slot: int
    cell: Cell
    outcome: Outcome
    process: subprocess.Popen
    result_file: Path
    started: float = field(default_factory=time.perf_counter)


class _Lines:
    """One line per job on a terminal (redrawn in place), or every line prefixed ``[job k]``."""

    def __init__(self, jobs: int, shown: bool) -> None:
        self.shown = shown
        self.tty = shown and sys.stderr.isatty()
        self.latest = [""] * jobs
        self.drawn = 0
        self.lock = threading.Lock()

    def job(self, slot: int, line: str) -> None:
        with self.lock:
            if not self.shown:
                return
            if not self.tty:
                print(f"[job {slot + 1}] {line}", file=sys.stderr, flush=True)
                return
            self.latest[slot] = line
            self._draw()

    def say(self, line: str) -> None:
        """A line of the suite's own (a cell starts, ends or is skipped), above the jobs' lines."""
        with self.lock:
            if not self.shown:
                return
            self._clear()
            print(line, file=sys.stderr, flush=True)
            self._draw()

    def close(self) -> None:
        with self.lock:
            if self.tty:
                self._clear()

    def _clear(self) -> None:
        if self.tty and self.drawn:
            sys.stderr.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self) -> None:
        if not self.tty:
            return
        self._clear()
        width = max(20, shutil.get_terminal_size().columns - 1)
        for slot, line in enumerate(self.latest):
            sys.stderr.write(f"[job {slot + 1}] {line or 'idle'}"[:width] + "\n")
        self.drawn = len(self.latest)
        sys.stderr.flush()


def _conflicts(cell: Cell, other: Cell) -> bool:
    """Whether two cells may share stages or rows (same dataset and seed, and the same encoder
    or backbone): better one after the other than one waiting beside the other."""
    if (cell.dataset, cell.seed) != (other.dataset, other.seed):
        return False
    shared_encoder = cell.encoder is not None and cell.encoder in (other.encoder, other.method)
    shared_encoder |= other.encoder is not None and other.encoder == cell.method
    shared_backbone = cell.backbone is not None and cell.backbone == other.backbone
    return shared_encoder or shared_backbone


def run_parallel(runner: Runner, cells: list[Cell], *, jobs: int, keep_going: bool, shown: bool = True
                 ) -> list[Outcome]:
    """Run ``cells`` (planned, in order) with up to ``jobs`` processes; the outcomes in the
    cells' order, as ``Runner.run_all`` gives them."""
    from collm_bench import progress
    from collm_bench.suites._worker import request_to_json

    lines = _Lines(jobs, shown and progress.level() > progress.QUIET)
    slots = Slots.for_machine(jobs, lines.say)
    lines.latest = [""] * slots.jobs
    runner.needed = runner._needed(cells, prepare=True)
    pending = list(cells)
    running: dict[int, _Job] = {}
    events: queue.Queue = queue.Queue()
    failed_stop = False
    scratch = Path(tempfile.mkdtemp(prefix="collm-bench-jobs-"))
    total = len(cells)

    def finished(outcome: Outcome) -> None:
        runner.outcomes[id(outcome.cell)] = outcome
        lines.say(f"[{len(runner.outcomes)}/{total}] {outcome.status}: {outcome.cell.describe()}"
                  + (f" ({outcome.note})" if outcome.note else ""))

    def ready(cell: Cell) -> bool:
        return all(id(m) in runner.outcomes for m in cell.members)

    def next_cell() -> Cell | None:
        candidates = [c for c in pending if ready(c)]
        busy = [job.cell for job in running.values()]
        calm = [c for c in candidates if not any(_conflicts(c, b) for b in busy)]
        return (calm or candidates or [None])[0]

    def start(cell: Cell) -> None:
        nonlocal failed_stop
        try:
            outcome, planned = runner.decide(cell, dry_run=False)
        except Exception as exc:  # noqa: BLE001 - as the serial suite: named, and fatal without --keep-going
            from collm_bench.api.registry import describe

            note = str(exc) if isinstance(exc, UserError) else describe(exc)
            finished(Outcome(cell, "failed", note=note))
            failed_stop = failed_stop or not keep_going
            return
        if planned is None:
            finished(outcome)
            return
        slot = min(set(range(slots.jobs)) - set(running))
        request_file, result_file = scratch / f"{id(cell)}.request.json", scratch / f"{id(cell)}.result.json"
        request_file.write_text(json.dumps(request_to_json(planned.request)))
        process = subprocess.Popen([sys.executable, "-m", "collm_bench.suites._worker", str(request_file),
                                    str(result_file), str(progress.level())],
                                   env=slots.environment(slot), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", bufsize=1)
        running[slot] = _Job(slot, cell, outcome, process, result_file)
        lines.say(f"running {cell.describe()} -> {planned.run_dir} (job {slot + 1}"
                  + (f", GPU {slots.gpus[slot]}" if slots.gpus else f", {slots.threads} thread(s)") + ")")
        threading.Thread(target=_pump, args=(slot, process, lines, events), daemon=True).start()

    try:
        while pending or running:
            while not failed_stop and len(running) < slots.jobs:
                cell = next_cell()
                if cell is None:
                    break
                pending.remove(cell)
                start(cell)
            if not running:
                if failed_stop or not pending:
                    break
                if next_cell() is None:   # cannot happen: order() runs members first, cycles refused
                    raise RuntimeError(f"no cell can start: {', '.join(c.describe() for c in pending)}")
                continue
            try:
                slot = events.get(timeout=1.0)   # a timeout, so that Ctrl-C is seen at once
            except queue.Empty:
                continue
            job = running.pop(slot)
            job.process.wait()
            outcome = _ended(runner, job)
            finished(outcome)
            if outcome.status == "failed" and not keep_going:
                failed_stop = True
    except BaseException:
        _stop_all(running, lines)
        raise
    finally:
        lines.close()
        shutil.rmtree(scratch, ignore_errors=True)
    for cell in pending:   # not started after a failure
        runner.outcomes[id(cell)] = Outcome(cell, "not run", note="an earlier run failed (use --keep-going)")
    return [runner.outcomes[id(cell)] for cell in cells]


def _pump(slot: int, process: subprocess.Popen, lines: _Lines, events: queue.Queue) -> None:
    """Forward a job's output line by line; say when it has ended."""
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip("\n").split("\r")[-1]
        if line.strip():
            lines.job(slot, line)
    events.put(slot)


def _ended(runner: Runner, job: _Job) -> Outcome:
    try:
        result: dict[str, Any] = json.loads(job.result_file.read_text())
    except (OSError, ValueError):
        result = {"error": f"its process ended with status {job.process.returncode} and said nothing"}
    if "run_dir" in result:
        return runner.ran(job.outcome, Path(result["run_dir"]))
    job.outcome.status = "stopped" if "stopped" in result else "failed"
    job.outcome.note = result.get("error") or f"stopped by {result.get('stopped')}"
    return job.outcome


def _stop_all(running: dict[int, _Job], lines: _Lines) -> None:
    """Ctrl-C or SIGTERM: every job gets SIGTERM (it keeps its finished stages and records, as
    a run stopped by hand does), then is waited for; one that does not end in 60 s is killed."""
    for job in running.values():
        if job.process.poll() is None:
            try:
                job.process.send_signal(signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 60
    for job in running.values():
        try:
            job.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.process.kill()
    lines.close()
    stopped = ", ".join(job.cell.describe() for job in running.values())
    if stopped:
        print(f"stopped {len(running)} job(s): {stopped}", file=sys.stderr, flush=True)
