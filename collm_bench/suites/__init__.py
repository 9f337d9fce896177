"""Suites: a TOML file of runs (``file``), expanded, planned and run (``plan``), one after
another, up to N at once (``jobs``), or as cluster jobs through submitit (``cluster``).

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "AXES": "collm_bench.suites.file",
    "CLUSTERS": "collm_bench.suites.cluster",
    "CellJob": "collm_bench.suites.cluster",
    "LOCAL_FILESYSTEMS": "collm_bench.suites.cluster",
    "RESOURCES": "collm_bench.suites.file",
    "Submitit": "collm_bench.suites.cluster",
    "filesystem_type": "collm_bench.suites.cluster",
    "launcher": "collm_bench.suites.cluster",
    "local_filesystems": "collm_bench.suites.cluster",
    "resources_from_pairs": "collm_bench.suites.cluster",
    "read_resources": "collm_bench.suites.file",
    "submitit_parameters": "collm_bench.suites.cluster",
    "COMMAND_LINE_ONLY": "collm_bench.suites.file",
    "Cell": "collm_bench.suites.plan",
    "DISTRIBUTION": "collm_bench.suites.file",
    "ENTRY_KEYS": "collm_bench.suites.file",
    "Entry": "collm_bench.suites.file",
    "MAX_CELLS": "collm_bench.suites.plan",
    "OPTION_TABLES": "collm_bench.suites.file",
    "Outcome": "collm_bench.suites.plan",
    "Overrides": "collm_bench.suites.plan",
    "Processes": "collm_bench.suites.jobs",
    "Runner": "collm_bench.suites.plan",
    "Slots": "collm_bench.suites.jobs",
    "cpu_count": "collm_bench.suites.jobs",
    "run_parallel": "collm_bench.suites.jobs",
    "visible_gpus": "collm_bench.suites.jobs",
    "SUITE_KEYS": "collm_bench.suites.file",
    "SuiteFile": "collm_bench.suites.file",
    "TABLES": "collm_bench.suites.file",
    "TOP_KEYS": "collm_bench.suites.file",
    "expand": "collm_bench.suites.plan",
    "matrix_size": "collm_bench.suites.plan",
    "order": "collm_bench.suites.plan",
    "read_suite": "collm_bench.suites.file",
    "report": "collm_bench.suites.plan",
    "select": "collm_bench.suites.plan",
    "stale_code": "collm_bench.suites.plan",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
