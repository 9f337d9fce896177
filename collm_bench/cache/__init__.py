"""The stage cache: stages keyed by the options they read and the code they reach
(``identity``), checkpoints of unfinished stages, and the cache's administration.

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "CHECKPOINT": "collm_bench.cache.admin",
    "Checkpointer": "collm_bench.cache.checkpoints",
    "DEFAULT_SECONDS": "collm_bench.cache.checkpoints",
    "Entry": "collm_bench.cache.admin",
    "FORMAT": "collm_bench.cache.checkpoints",
    "IN_PROGRESS": "collm_bench.cache.admin",
    "LEASES": "collm_bench.cache.stages",
    "LEFTOVER": "collm_bench.cache.admin",
    "LIBRARIES": "collm_bench.cache.identity",
    "NAMESPACE": "collm_bench.cache.identity",
    "PLUMBING": "collm_bench.cache.identity",
    "PROCESS_PREFIX": "collm_bench.cache.stages",
    "Root": "collm_bench.cache.identity",
    "SCHEME": "collm_bench.cache.identity",
    "STAGE": "collm_bench.cache.admin",
    "STAGE_FILE": "collm_bench.cache.stages",
    "StageCache": "collm_bench.cache.stages",
    "StageOptions": "collm_bench.cache.options",
    "StageResult": "collm_bench.cache.stages",
    "UNKNOWN": "collm_bench.cache.admin",
    "Unit": "collm_bench.cache.identity",
    "cache_root": "collm_bench.cache.stages",
    "changes": "collm_bench.cache.identity",
    "checkpoint_dir": "collm_bench.cache.stages",
    "earlier_seconds": "collm_bench.cache.stages",
    "code_identity": "collm_bench.cache.stages",
    "code_units": "collm_bench.cache.identity",
    "dependencies": "collm_bench.cache.identity",
    "digest": "collm_bench.cache.identity",
    "doomed": "collm_bench.cache.admin",
    "human": "collm_bench.cache.admin",
    "interval_seconds": "collm_bench.cache.checkpoints",
    "kept_keys": "collm_bench.cache.admin",
    "library_versions": "collm_bench.cache.identity",
    "live_leases": "collm_bench.cache.stages",
    "option_groups": "collm_bench.cache.options",
    "progress": "collm_bench.cache.admin",
    "remove": "collm_bench.cache.admin",
    "scan": "collm_bench.cache.admin",
    "stale_reasons": "collm_bench.cache.identity",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
