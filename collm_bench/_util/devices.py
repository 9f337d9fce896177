"""Whether this torch can see a GPU at all, told without importing it (``import torch`` takes a
second or more, which a ``suite --dry-run`` resolving ``preset=auto`` would pay for nothing).

A build of torch without CUDA or ROCm (``torch.version.cuda`` and ``torch.version.hip`` both
``None``: the CPU wheel) can never report CUDA available, and its ``torch/version.py`` says so
as plain assignments. Anything else, or a file that cannot be read as that, answers False: the
caller then imports torch and asks it.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

__identity__ = "plumbing"


def cpu_only_torch() -> bool:
    """True when the installed torch is a build with neither CUDA nor ROCm (read from its
    ``version.py``, torch not imported); False when that cannot be told."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        tree = ast.parse((Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    builds = {}
    for node in ast.walk(tree):   # every binding of the two names, anywhere in the file
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("cuda", "hip"):
                if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(node.value, ast.Constant):
                    return False   # bound to what a reading cannot tell
                builds.setdefault(target.id, set()).add(node.value.value)
    return builds == {"cuda": {None}, "hip": {None}}
