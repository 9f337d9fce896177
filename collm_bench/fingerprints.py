"""What a result's code is: the source files it can depend on, found by following imports.

A stage key or a run record names the modules whose code made it: the roots given (the module
that computes the stage, the plugin modules of its components) and every collm-bench or plugin
module they import, directly or not, including imports inside functions (found in the source, not
by running it). Importing a package counts its ``__init__`` and the modules its lazy-loader table names
(a dict of module names, as ``collm_bench.llmrec``'s). Only modules of collm-bench's namespace
(``collm_bench*``) and of the roots' own top-level names are followed: third-party libraries
count by their versions instead. So an edit to ``collm_bench/leaderboard.py`` leaves every stage
and record as it was, and an edit to ``collm_bench/llm.py`` marks only what the LLM methods made.

A module's fingerprint is of its code, not its text: the digest of its syntax tree without
docstrings (``code_digest``), so that a comment, a docstring or a reflowed line leaves every
result current. The tree's shape depends on the Python version, which is recorded beside the
libraries' versions.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

NAMESPACE = "collm_bench"
LIBRARIES = ("torch", "transformers", "peft", "numpy", "scikit-learn", "pandas")


@functools.lru_cache(maxsize=None)
def _origin(name: str, search_path: tuple[str, ...]) -> Path | None:
    """The source file of module ``name``, found without importing anything (``find_spec`` of a
    dotted name would import its parents, torch included)."""
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    for part in rest.split(".") if rest else ():
        if path.name != "__init__.py":  # a plain module has no submodules: a name inside it
            return None
        folder = path.parent / part
        path = folder / "__init__.py" if (folder / "__init__.py").exists() else path.parent / f"{part}.py"
        if not path.exists():
            return None
    return path


def _tracked(name: str, tops: frozenset[str]) -> bool:
    """collm-bench's namespace, and a plugin's own modules (``myplugin``, ``myplugin_model``)."""
    top = name.split(".", 1)[0]
    return top.startswith(NAMESPACE) or any(top == t or top.startswith(t + "_") for t in tops)


def _imports(name: str, path: Path, tops: frozenset[str]) -> set[str]:
    """Module names ``path`` (module ``name``) may import, as written in its source."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import submodule``
        elif path.name == "__init__.py" and isinstance(node, ast.Dict):  # a lazy loader's table
            found.update(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                         and v.value.startswith(name + "."))
    out = set()
    for module in found:
        if not _tracked(module, tops):
            continue
        parts = module.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # a module implies its packages
    return out


@functools.lru_cache(maxsize=256)
def _closure(roots: tuple[str, ...], search_path: tuple[str, ...]) -> dict[str, Path]:
    """Cached per import path (the same names may be other files under another ``sys.path``)."""
    tops = frozenset(r.split(".", 1)[0] for r in roots)
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _origin(name, search_path)
        if path is None:  # a name in an import list that is a function or class, not a module
            continue
        seen[name] = path
        todo.extend(_imports(name, path, tops) - set(seen))
    return seen


def code_digest(path: Path) -> str:
    """sha256[:12] of the code in ``path``: its syntax tree without docstrings, so comments,
    docstrings and layout do not count (parsed once per distinct content)."""
    source = path.read_bytes()
    content = hashlib.sha256(source).hexdigest()
    if content not in _CODE_DIGESTS:
        _CODE_DIGESTS[content] = _tree_digest(source, str(path))
    return _CODE_DIGESTS[content]


_CODE_DIGESTS: dict[str, str] = {}   # sha256 of a file's bytes -> code_digest


def _tree_digest(source: bytes, path: str) -> str:
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def module_fingerprints(*roots: str) -> dict[str, str]:
    """``module -> code_digest`` of its source, for ``roots`` and everything they import."""
    files = _closure(tuple(sorted(set(roots))), tuple(sys.path))
    return {name: code_digest(path) for name, path in sorted(files.items())}


def fingerprints_of(names) -> dict[str, str | None]:
    """The current fingerprint of each named module (None: no such module any more)."""
    out: dict[str, str | None] = {}
    for name in names:
        path = _origin(name, tuple(sys.path))
        out[name] = code_digest(path) if path is not None and path.exists() else None
    return out


def dependencies(*roots: str) -> dict[str, dict[str, str | None]]:
    """What a run record keeps of its code: every module's fingerprint, and library versions."""
    return {"modules": module_fingerprints(*roots), "libraries": library_versions()}


def stale_reasons(recorded: dict | None) -> list[str]:
    """Why a result made with ``recorded`` dependencies may differ if made now (empty: it would
    not): its modules as they are now, and the libraries installed now."""
    if not recorded or not isinstance(recorded.get("modules"), dict):
        return ["its code is not recorded (written before records kept it)"]
    now = {"modules": fingerprints_of(recorded["modules"]), "libraries": library_versions()}
    return changes(recorded, now)


def digest(fingerprints: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(fingerprints.items())).encode()).hexdigest()[:16]


def library_versions() -> dict[str, str | None]:
    """The numerical libraries a result depends on (results move with them), and the Python
    version (``code_digest``'s trees are of its grammar)."""
    out: dict[str, str | None] = {"python": "%d.%d" % sys.version_info[:2]}
    for dist in LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def changes(recorded: dict, current: dict) -> list[str]:
    """What differs between two ``{"modules": ..., "libraries": ...}`` descriptions, one short
    phrase each (``collm_bench.llm changed``, ``torch 2.12.0 -> 2.13.0``)."""
    out = []
    old, new = recorded.get("modules") or {}, current.get("modules") or {}
    out += [f"{m} {'removed' if new[m] is None else 'changed'}" for m in sorted(set(old) & set(new))
            if old[m] != new[m]]
    out += [f"{m} added" for m in sorted(set(new) - set(old))]
    out += [f"{m} removed" for m in sorted(set(old) - set(new))]
    old_libs, new_libs = recorded.get("libraries") or {}, current.get("libraries") or {}
    out += [f"{lib} {old_libs.get(lib)} -> {new_libs.get(lib)}" for lib in sorted(set(old_libs) | set(new_libs))
            if old_libs.get(lib) != new_libs.get(lib)]
    return out
