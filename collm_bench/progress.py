"""Progress a person can follow: a bar (tqdm) with rate and time left on each long loop when
standard error is a terminal, one summary line per loop otherwise (logs, CI), nothing with
``--quiet``, every step's line with ``--verbose``.

Loops (encoder epochs, tuning steps, scoring) open a ``bar``; their per-step lines go to
``detail`` and are printed only when verbose. Under torchrun only rank 0 shows anything.
"""
from __future__ import annotations

import sys
import time
from typing import Any

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

QUIET, NORMAL, VERBOSE = 0, 1, 2
_LEVEL = {"level": NORMAL}


def set_level(level: int) -> None:
    """``QUIET``, ``NORMAL`` or ``VERBOSE`` (the CLI's ``--quiet`` / ``--verbose``)."""
    _LEVEL["level"] = level


def level() -> int:
    return _LEVEL["level"]


def _shown() -> bool:
    from collm_bench._util import distributed
    return level() > QUIET and distributed.is_main()


def say(message: str) -> None:
    """A line worth reading in any log (a stage starts, a record is written)."""
    if _shown():
        print(message, file=sys.stderr, flush=True)


def detail(message: str) -> None:
    """A per-step line, printed only with ``--verbose``."""
    if level() >= VERBOSE and _shown():
        print(message, file=sys.stderr, flush=True)


class bar:
    """``with bar(total, "step 1", unit="step") as b: b.update(1); b.note(loss=...)``.

    A tqdm bar on a terminal; elsewhere (or verbose, where the step lines are the progress)
    one line when the loop ends: what it did, how long, at what rate, with the last notes.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it") -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.notes = 0, {}
        self.started = time.perf_counter()
        self.tqdm = None
        if _shown() and level() == NORMAL and sys.stderr.isatty():
            from tqdm import tqdm

            self.tqdm = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def __enter__(self) -> "bar":
        return self

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.tqdm is not None:
            self.tqdm.update(n)

    def note(self, **values: Any) -> None:
        """Values shown beside the bar and in the closing line (loss, valid AUC)."""
        self.notes.update(values)
        if self.tqdm is not None:
            self.tqdm.set_postfix({k: _short(v) for k, v in values.items()}, refresh=False)

    def __exit__(self, *exc: Any) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
        if _shown():
            seconds = time.perf_counter() - self.started
            rate = f", {self.done / seconds:.1f} {self.unit}/s" if seconds > 0 and self.done else ""
            of = f"/{self.total}" if self.total else ""
            notes = "".join(f", {k} {_short(v)}" for k, v in self.notes.items())
            stopped = " (interrupted)" if exc and exc[0] is not None else ""
            print(f"{self.desc}: {self.done}{of} {self.unit}s in {seconds:.1f} s{rate}{notes}{stopped}",
                  file=sys.stderr, flush=True)


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
