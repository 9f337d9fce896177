"""Lazy re-exports: a subpackage names its public API in its ``__init__`` without importing
torch (or anything heavy) until a name is used."""
from __future__ import annotations

import importlib
from typing import Any, Callable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public names are the keys of
    ``table`` (name -> module), so that ``dir()``, ``pydoc`` and ``from package import name``
    all see them."""
    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(table) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
