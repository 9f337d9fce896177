"""Reading a module's source for ``collm_bench.cache.identity``, without importing it: its
top-level definitions, what its imports bind, its other statements, its lazy-loader table and
its declarations (``__identity__ = "plumbing"``, ``__guards__``)."""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

NAMESPACE = "collm_bench"


@functools.lru_cache(maxsize=None)
def origin(name: str, search_path: tuple[str, ...]) -> Path | None:
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


def tracked(name: str, tops: frozenset[str]) -> bool:
    """collm-bench's namespace, and a plugin's own modules (``myplugin``, ``myplugin_model``)."""
    top = name.split(".", 1)[0]
    return top.startswith(NAMESPACE) or any(top == t or top.startswith(t + "_") for t in tops)


@dataclass
class Module:
    name: str
    package: str
    defs: dict[str, ast.AST] = field(default_factory=dict)      # top-level name -> its definition
    binds: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (module, attr)
    side: list[ast.stmt] = field(default_factory=list)           # other top-level statements
    lazy: dict[str, str] = field(default_factory=dict)           # lazy loader: name -> module
    side_names: set[str] = field(default_factory=set)            # names the other statements bind
    stars: list[str] = field(default_factory=list)               # modules it imports * from
    plumbing: bool = False
    guards: set[str] = field(default_factory=set)                # plumbing functions that only refuse
    sha256: str = ""                                             # of the source parsed


def import_binds(node: ast.AST, package: str) -> dict[str, tuple[str, str | None]]:
    """The names an import statement binds: ``import a.b`` binds ``a`` to module ``a``,
    ``import a.b as c`` binds ``c`` to ``a.b``, ``from m import x`` binds ``x`` to ``(m, x)``."""
    out: dict[str, tuple[str, str | None]] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                out[alias.asname] = (alias.name, None)
            else:
                out[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parent = ".".join(parts[:len(parts) - node.level + 1])
            base = f"{parent}.{base}" if base else parent
        for alias in node.names:
            out[alias.asname or alias.name] = (base, alias.name)
    return out


def top_statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Top-level statements, looking into module-level ``if`` / ``try`` blocks."""
    for node in body:
        if isinstance(node, (ast.If, ast.Try)):
            yield node
            for block in (node.body, node.orelse, getattr(node, "finalbody", []),
                          *[h.body for h in getattr(node, "handlers", [])]):
                yield from top_statements(block)
        else:
            yield node


PARSED: dict[tuple[str, str], Module] = {}   # (name, sha256 of its bytes) -> parsed module


def parse(name: str, path: Path) -> Module:
    source = path.read_bytes()
    cache_key = (name, hashlib.sha256(source).hexdigest())
    if cache_key in PARSED:
        return PARSED[cache_key]
    tree = ast.parse(source, filename=str(path))
    module = Module(name, name if path.name == "__init__.py" else name.rpartition(".")[0], sha256=cache_key[1])
    nested = {id(n) for top in tree.body if isinstance(top, (ast.If, ast.Try)) for n in ast.walk(top)}
    for node in top_statements(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            binds = import_binds(node, module.package)
            if "*" in binds:   # names it binds cannot be told: the whole module counts (_shallow)
                module.stars.append(binds.pop("*")[0])
            module.binds.update(binds)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and id(node) not in nested:
            module.defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and id(node) not in nested and assigned(node):
            names = assigned(node)
            if names == ["__identity__"]:
                module.plumbing = constant(node.value) == "plumbing"
                continue
            if names == ["__guards__"] and isinstance(node.value, (ast.Tuple, ast.List)):
                module.guards = {constant(e) for e in node.value.elts if isinstance(constant(e), str)}
                continue
            if names == ["__all__"]:
                continue
            for target in names:
                module.defs[target] = node
            if path.name == "__init__.py" and isinstance(node.value, ast.Dict):   # a lazy loader's table
                module.lazy.update({k.value: v.value for k, v in zip(node.value.keys, node.value.values)
                                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                                    and isinstance(v.value, str) and v.value.startswith(name + ".")})
        elif not isinstance(node, (ast.If, ast.Try)) and id(node) not in nested:
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):   # a docstring
                module.side.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            module.side.append(node)
    for node in module.side:   # what a conditional definition or a loop binds, and the definitions
        for child in ast.walk(node):   # it may change (``PRESETS["x"] = ...``, ``TABLE.update(...)``)
            if isinstance(child, ast.Name) and (isinstance(child.ctx, ast.Store) or child.id in module.defs):
                module.side_names.add(child.id)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.side_names.add(child.name)
    PARSED[cache_key] = module
    return module


def assigned(node: ast.AST) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [t.id for t in targets if isinstance(t, ast.Name)] if all(isinstance(t, ast.Name) for t in targets) else []


def constant(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


