"""Every JSON collm-bench writes is strict JSON: no NaN or infinity, which ``json`` would write
as bare ``NaN`` / ``Infinity`` tokens that other readers refuse. A guard
(``collm_bench.cache.identity``): it only refuses, so the writers of computed files call it
without changing any result's identity."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"
__guards__ = ("check_strict_json",)


def non_finite(value: Any, where: str = "") -> str | None:
    """The path (``metrics.overall.auc``) of the first NaN or infinity in ``value``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(the value itself)"
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = non_finite(item, f"{where}[{i}]")
            if found:
                return found
    return None


def check_strict_json(payload: Any, path: Path | str) -> None:
    """Refuse to write ``payload`` to ``path`` when it holds NaN or infinity (a bug upstream:
    an undefined number is written as null with its reason, never as NaN)."""
    found = non_finite(payload)
    if found:
        raise ValueError(f"{path}: would hold a non-finite number at {found}: JSON has none (write null, "
                         "with the reason, for an undefined value)")
