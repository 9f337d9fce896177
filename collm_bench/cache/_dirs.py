"""Where collm-bench keeps what it downloads, prepares and trains: the user's cache directory,
unless an option or an environment variable says otherwise."""
from __future__ import annotations

import os
from pathlib import Path

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def cache_dir(override: str | Path | None, env_var: str, subdir: str) -> Path:
    """``override``, else ``$env_var``, else ``<user cache>/collm-bench/<subdir>``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("collm-bench")) / subdir
