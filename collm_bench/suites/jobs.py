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
        elif not gpus and jobs > cpu_count():   # more processes than cores only compete for them
            say(f"--jobs {jobs}, but {cpu_count()} core(s) here: {cpu_count()} jobs, one thread each")
            jobs = cpu_count()
        return cls(jobs=jobs, threads=max(1, cpu_count() // jobs), gpus=gpus[:jobs])

    def environment(self, slot: int) -> dict[str, str]:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
               "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot]
        return env


class _Lines:
    """One line per job on a terminal (redrawn in place), or every line prefixed ``[job k]``."""

    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.tty = shown and sys.stderr.isatty()
        self.latest: dict[int, str] = {}
        self.drawn = 0
        self.lock = threading.Lock()

    def job(self, slot: int, line: str) -> None:
        with self.lock:
            if not self.shown or self.latest.get(slot) == line:   # a poll that says nothing new
                return
            self.latest[slot] = line
            if self.tty:
                self._draw()
            else:
                print(f"[job {slot + 1}] {line}", file=sys.stderr, flush=True)

    def forget(self, slot: int) -> None:
        """A slot whose job ended: its line goes."""
        with self.lock:
            self.latest.pop(slot, None)
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
        for slot, line in sorted(self.latest.items()):
            sys.stderr.write(f"[job {slot + 1}] {line}"[:width] + "\n")
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


class Processes:
    """Cells as processes of this machine (``suites._worker``), one slot each."""

    def __init__(self, slots: Slots, lines: _Lines) -> None:
        self.slots, self.lines = slots, lines
        self.capacity = slots.jobs
        self.scratch = Path(tempfile.mkdtemp(prefix="collm-bench-jobs-"))
        self.running: dict[int, tuple[subprocess.Popen, Path]] = {}
        self.events: queue.Queue = queue.Queue()

    def where(self, slot: int) -> str:
        return f"GPU {self.slots.gpus[slot]}" if self.slots.gpus else f"{self.slots.threads} thread(s)"

    def start(self, slot: int, cell: Cell, request: dict[str, Any], level: int) -> None:
        request_file, result_file = self.scratch / f"{slot}.request.json", self.scratch / f"{slot}.result.json"
        result_file.unlink(missing_ok=True)
        request_file.write_text(json.dumps(request))
        process = subprocess.Popen([sys.executable, "-m", "collm_bench.suites._worker", str(request_file),
                                    str(result_file), str(level)],
                                   env=self.slots.environment(slot), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", bufsize=1)
        self.running[slot] = (process, result_file)
        threading.Thread(target=_pump, args=(slot, process, self.lines, self.events), daemon=True).start()

    def wait(self, timeout: float) -> list[tuple[int, dict[str, Any]]]:
        """The slots whose job ended within ``timeout`` seconds, with what each wrote."""
        try:
            slot = self.events.get(timeout=timeout)
        except queue.Empty:
            return []
        process, result_file = self.running.pop(slot)
        process.wait()
        try:
            result: dict[str, Any] = json.loads(result_file.read_text())
        except (OSError, ValueError):
            result = {"error": f"its process ended with status {process.returncode} and said nothing"}
        return [(slot, result)]

    def stop(self) -> None:
        """SIGTERM to every job (each keeps its finished stages and records, as a run stopped by
        hand does), then wait; a job that does not end in 60 s is killed."""
        for process, _ in self.running.values():
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + 60
        for process, _ in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def run_parallel(runner: Runner, cells: list[Cell], *, jobs: int, keep_going: bool,
                 launcher: Callable[[_Lines], Any] | None = None) -> list[Outcome]:
    """Run ``cells`` (planned, in order) with up to ``jobs`` at once, on this machine's
    processes or through ``launcher`` (``suites.cluster``); the outcomes in the cells' order, as
    ``Runner.run_all`` gives them."""
    from collm_bench import progress
    from collm_bench.suites._worker import request_to_json

    level = progress.level()
    lines = _Lines(level > progress.QUIET)
    if launcher is None:
        slots = Slots.for_machine(jobs, lines.say)
        jobs_here: Any = Processes(slots, lines)
    else:
        jobs_here = launcher(lines)
    capacity = max(1, min(jobs, jobs_here.capacity, len(cells)))
    runner.needed = runner._needed(cells, prepare=True)
    pending = list(cells)
    running: dict[int, tuple[Cell, Outcome]] = {}
    failed_stop = False
    total = len(cells)

    def finished(outcome: Outcome) -> None:
        runner.outcomes[id(outcome.cell)] = outcome
        lines.say(f"[{len(runner.outcomes)}/{total}] {outcome.status}: {outcome.cell.describe()}"
                  + (f" ({outcome.note})" if outcome.note else ""))

    def next_cell() -> Cell | None:
        candidates = [c for c in pending if all(id(m) in runner.outcomes for m in c.members)]
        busy = [cell for cell, _ in running.values()]
        calm = [c for c in candidates if not any(_conflicts(c, b) for b in busy)]
        return (calm or candidates or [None])[0]

    def start(cell: Cell) -> None:
        nonlocal failed_stop
        try:
            outcome, planned = runner.decide(cell, dry_run=False)
        except Exception as exc:  # noqa: BLE001 - as the serial suite: named, and fatal without --keep-going
            from collm_bench.api.registry import describe

            finished(Outcome(cell, "failed", note=str(exc) if isinstance(exc, UserError) else describe(exc)))
            failed_stop = failed_stop or not keep_going
            return
        if planned is None:
            finished(outcome)
            return
        slot = min(set(range(capacity)) - set(running))
        jobs_here.start(slot, cell, request_to_json(planned.request), level)
        running[slot] = (cell, outcome)
        lines.say(f"running {cell.describe()} -> {planned.run_dir} (job {slot + 1}, {jobs_here.where(slot)})")

    try:
        while pending or running:
            while not failed_stop and len(running) < capacity:
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
            for slot, result in jobs_here.wait(timeout=1.0):   # a timeout, so that Ctrl-C is seen at once
                cell, outcome = running.pop(slot)
                lines.forget(slot)
                outcome = _ended(runner, outcome, result)
                finished(outcome)
                if outcome.status == "failed" and not keep_going:
                    failed_stop = True
    except BaseException:
        jobs_here.stop()
        lines.close()
        stopped = [cell.describe() for cell, _ in running.values()]
        if stopped:
            print(f"stopped {len(stopped)} job(s): {', '.join(stopped)}", file=sys.stderr, flush=True)
        raise
    finally:
        lines.close()
        jobs_here.close()
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


def _ended(runner: Runner, outcome: Outcome, result: dict[str, Any]) -> Outcome:
    if "run_dir" in result:
        return runner.ran(outcome, Path(result["run_dir"]), result.get("companions") or [])
    outcome.status = "stopped" if "stopped" in result else "failed"
    outcome.note = result.get("error") or f"stopped by {result.get('stopped')}"
    return outcome
