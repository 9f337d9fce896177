"""Every hook a collm-bench plugin can implement.

Registration hooks receive a ``register`` callback and call it once per component,
so that one module may contribute several components and the harness can attribute
each one to the plugin that registered it.
"""
from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("collm_bench")


@hookspec
def register_datasets(register: Callable[[Any], None]) -> None:
    """Register datasets: call ``register(DatasetSpec(...))`` for each one."""


@hookspec
def register_encoders(register: Callable[[Any], None]) -> None:
    """Register collaborative encoders: call ``register(EncoderSpec(...))`` for each one."""


@hookspec
def register_backbones(register: Callable[[Any], None]) -> None:
    """Register LLM backbones: call ``register(BackboneSpec(...))`` for each one."""


@hookspec
def register_metrics(register: Callable[[Any], None]) -> None:
    """Register metrics: call ``register(MetricSpec(...))`` for each one; every record written
    afterwards carries them, and ``collm-bench score --update`` adds them to older ones."""


@hookspec
def register_methods(register: Callable[[Any], None]) -> None:
    """Register methods (leaderboard rows): call ``register(MethodSpec(...))`` for each one."""


@hookspec
def register_loggers(register: Callable[[Any], None]) -> None:
    """Register trackers: call ``register(LoggerSpec(...))`` (``collm_bench.api.loggers``) for each
    one; ``--log-to NAME`` sends every record a run or suite writes to it."""


@hookspec
def register_commands(app: Any) -> None:
    """Add sub-commands to the ``collm-bench`` typer application ``app``."""
