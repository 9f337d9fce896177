"""Trackers: where a finished run's record is sent (MLflow, Weights & Biases, ...).

A plugin registers a ``LoggerSpec`` through the ``register_loggers`` hook; ``collm-bench run``
and ``suite`` send each record they write to the loggers named by ``--log-to``, and
``collm-bench log`` sends records already written (``collm_bench.reporting.tracking``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


@dataclass(frozen=True)
class LoggerSpec:
    """A tracker. ``log(record, run_dir) -> str`` sends one run (``record`` is the record.json
    as read and checked; ``run_dir`` holds it and predictions.csv) and returns where it went (a
    run id, a URL), or says that it was there already; it raises when it cannot. ``requires``:
    the pip requirement it needs, named when it is missing."""

    name: str
    log: Callable[[dict[str, Any], Path], str]
    description: str
    requires: str = ""
