"""What a result's code is: the definitions that compute it, found by following names.

A stage key or a run record names its code by the definitions it can reach from its roots (the
function or module that computes the stage, the plugin modules of its components): every
function, class and module-level value of collm-bench's namespace (``collm_bench*``) or of the
roots' own top-level packages that a reached definition names, directly or through imports,
attribute chains (``module.function``) and lazy-loader tables. Third-party libraries count by
their versions instead.

Each definition's identity is its content, not its place: the digest of its syntax tree without
docstrings, without its own name, with its imports left out and every name it binds to another
definition replaced by that definition's digest (a Merkle tree; definitions that name each other
in a cycle are ordered by content). So moving or renaming a module, a function or a class,
splitting or merging files, comments, docstrings, layout and import order leave every stage key
and record as they were, while a change to anything a definition reaches (a constant, a loss,
a prompt's words) changes the digests of everything that reaches it.

Fail safe, when in doubt a definition is in:
- a reached class counts whole (every method, and what they name);
- a module used as a value (``getattr(module, name)``, passed as an argument, ``import *``) or
  named by ``importlib.import_module("...")`` counts whole;
- a module's statements that are not definitions (a registration, a global setting) count,
  as one unit, with every module reached; a definition they name (``PRESETS["x"] = ...``)
  carries them in its digest;
- a name that cannot be resolved in a module of the namespace brings that whole module.

Plumbing is the declared exception: a module that assigns ``__identity__ = "plumbing"`` moves
results around without computing them (the run record's writer and reader, the CLI, reporting,
the stage cache's bookkeeping, paths, progress output). Its definitions are never followed and
stand in the code that names them as one placeholder, so editing, moving or renaming them stales
nothing. ``tests/test_identity.py`` holds the boundary: plumbing imports no numerical library,
and both directions are shown on a copy of the package.

Definitions known by what they select: ``BY_OUTPUT`` lists the definitions whose result every
run that calls them writes into its config, and so into its run id (the test sample: its scheme,
its users and a digest of the rows chosen; the whole split's rows are not pinned). A change to one of them that picks
other rows gives other runs (new run ids: the suite plans them, the old records are orphans, not
silently stale), and one that picks the same rows changes nothing; so a record's check takes such a
definition as it was when the record was made. Stage keys never pin: a stage that reached one
would be computed again.

Guards are plumbing functions that only refuse: a plumbing module names them in ``__guards__``,
and each returns nothing and changes none of its arguments (tested). A statement of computing
code that only calls a guard on names and attributes (``check_manifest(path, manifest)``) is
left out of the digest, so that adding a check to the code that computes a number stales
nothing; a guard whose value is used, whose arguments call anything, or whose call sits in a
``try`` or ``with`` block (where its refusal could be caught and turned into another result),
counts as any plumbing call does.
"""
from __future__ import annotations

import ast
import copy
import functools
import hashlib
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from collm_bench.cache import _identity_store
from collm_bench.cache._identity_store import file_stamp
from collm_bench.cache._sources import Module, constant, import_binds, origin, parse, tracked

__identity__ = "plumbing"

LIBRARIES = ("torch", "transformers", "peft", "numpy", "scikit-learn", "pandas")
SCHEME = 2          # the identity scheme a record's "dependencies" were written under
PLUMBING = "@plumbing"
# Known by their output (see the module docstring): tests/test_identity.py shows a changed sampler
# keeps records fresh and changes the run id of a sampled run.
BY_OUTPUT = frozenset({"collm_bench.api.methods:sampled_rows"})


# -- the graph of definitions ---------------------------------------------------------------------

Unit = tuple[str, str]     # (module, top-level name), or (module, "") for its other statements


class _Graph:
    """Parses modules on demand and resolves the names of a definition to the units they bind."""

    def __init__(self, tops: frozenset[str], search_path: tuple[str, ...]) -> None:
        self.tops, self.search_path = tops, search_path
        self.modules: dict[str, Module | None] = {}
        self.files: dict[Path, tuple[int, ...]] = {}   # what was read: the file_stamp of each file
        self.found: dict[str, tuple[Path | None, str | None]] = {}   # tracked module -> (file, sha256 parsed)
        self.shallow: dict[Unit, _Shallow] = {}

    def module(self, name: str) -> Module | None:
        if name not in self.modules:
            path = origin(name, self.search_path) if tracked(name, self.tops) else None
            if path is not None:
                self.files[path] = file_stamp(path)
            self.modules[name] = parse(name, path) if path is not None else None
            if tracked(name, self.tops):
                self.found[name] = (path, self.modules[name].sha256 if path is not None else None)
        return self.modules[name]

    def whole(self, name: str) -> list[Unit] | str:
        """Every unit of module ``name`` (a plumbing module: the placeholder)."""
        module = self.module(name)
        if module is None:
            return []
        if module.plumbing:
            return PLUMBING
        return [(name, "")] * _has_statements(self, name) + [(name, d) for d in sorted(module.defs)]

    def attribute(self, module_name: str, attr: str, seen: frozenset = frozenset()) -> tuple[str, Any]:
        """What ``module.attr`` binds: ("unit", Unit) | ("module", name) | ("plumbing", (module, attr)) |
        ("outside", None) for a library's name | ("whole", name) when it cannot be told."""
        module = self.module(module_name)
        if module is None:
            return ("outside", None)
        if module.plumbing:   # its own definitions are placeholders; what it re-exports is followed
            if attr in module.binds and attr not in module.defs and (module_name, attr) not in seen:
                return self.binding(module.binds[attr], seen | {(module_name, attr)})
            return ("plumbing", (module_name, attr))
        if attr in module.side_names:
            return ("units", [(module_name, attr), (module_name, "")] if attr in module.defs else [(module_name, "")])
        if attr in module.defs:
            return ("unit", (module_name, attr))
        if attr in module.binds and (module_name, attr) not in seen:   # a re-export
            return self.binding(module.binds[attr], seen | {(module_name, attr)})
        if attr in module.lazy:
            return self.attribute(module.lazy[attr], attr, seen)
        if self.module(f"{module_name}.{attr}") is not None:
            return ("module", f"{module_name}.{attr}")
        return ("whole", module_name)

    def binding(self, bound: tuple[str, str | None], seen: frozenset = frozenset()) -> tuple[str, Any]:
        target, attr = bound
        if not tracked(target, self.tops):
            return ("outside", None)
        if attr is None:
            return ("module", target) if self.module(target) is not None else ("outside", None)
        if attr == "*":
            return ("whole", target)
        return self.attribute(target, attr, seen)


@dataclass
class _Shallow:
    tree: str                       # ast.dump of the normalized definition, references as "@<i>"
    edges: list[list[Unit] | str]   # each reference: the units it binds (a whole module: several)


class _Normalizer(ast.NodeTransformer):
    """One definition's tree without docstrings, imports or its own name, each reference to a
    tracked definition replaced by ``@<i>`` (its i-th edge)."""

    def __init__(self, graph: _Graph, module: Module, local: dict[str, tuple[str, str | None]]) -> None:
        self.graph, self.module, self.local = graph, module, local
        self.edges: list[list[Unit] | str] = []
        self.guarded = 0   # inside a try or with block: a guard's refusal could be caught there

    def _ref(self, resolved: tuple[str, Any], node: ast.AST) -> ast.AST:
        kind, what = resolved
        if kind == "outside":
            return node
        if kind == "plumbing":
            edge: list[Unit] | str = PLUMBING
        elif kind == "unit":
            edge = [what]
        elif kind == "units":
            edge = list(what)
        else:   # a module used as a value, or a name that cannot be told: the whole module
            edge = self.graph.whole(what)
        self.edges.append(edge)
        return ast.copy_location(ast.Name(id=f"@{len(self.edges) - 1}", ctx=ast.Load()), node)

    def _name(self, name: str) -> tuple[str, Any] | None:
        if name in self.local:
            return self.graph.binding(self.local[name])
        if name in self.module.defs or name in self.module.side_names:
            return self.graph.attribute(self.module.name, name)
        if name in self.module.binds:
            return self.graph.binding(self.module.binds[name])
        return None   # a local variable, an argument or a builtin

    def visit_Name(self, node: ast.Name) -> ast.AST:
        resolved = self._name(node.id) if isinstance(node.ctx, ast.Load) else None
        return self._ref(resolved, node) if resolved else node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        resolved = self._name(base.id) if isinstance(base, ast.Name) else None
        if resolved is None or resolved[0] != "module":
            return self.generic_visit(node)
        # walk the chain through modules: ``collm_bench.records.metrics.auc``, ``pkg.sub.f``
        consumed = 0
        for attr in reversed(chain):
            if resolved[0] != "module":
                break
            resolved = self.graph.attribute(resolved[1], attr)
            consumed += 1
        if resolved[0] == "outside":
            return self.generic_visit(node)
        replaced = self._ref(resolved, node)
        for attr in reversed(chain[:len(chain) - consumed]):   # the rest: attributes of what it binds
            replaced = ast.Attribute(value=replaced, attr=attr, ctx=ast.Load())
        return replaced

    def _resolve(self, node: ast.AST) -> tuple[str, Any] | None:
        """What a name or an attribute chain binds (None: a local, a builtin, an attribute of one)."""
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        resolved = self._name(base.id) if isinstance(base, ast.Name) else None
        for attr in reversed(chain):
            if resolved is None or resolved[0] != "module":
                return None
            resolved = self.graph.attribute(resolved[1], attr)
        return resolved

    def visit_Expr(self, node: ast.Expr) -> ast.AST | None:
        """A statement that only calls a guard: left out (see the module's docstring)."""
        if isinstance(node.value, ast.Call) and not self.guarded and _pure(node.value):
            resolved = self._resolve(node.value.func)
            if resolved is not None and resolved[0] == "plumbing" and resolved[1] is not None:
                module = self.graph.module(resolved[1][0])
                if module is not None and resolved[1][1] in module.guards:
                    return None
        return self.generic_visit(node)

    def _inside(self, node: ast.AST) -> ast.AST:
        self.guarded += 1
        try:
            return self.generic_visit(node)
        finally:
            self.guarded -= 1

    visit_Try = visit_With = visit_AsyncWith = _inside
    visit_TryStar = _inside

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        dotted = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if dotted == "import_module" and node.args and isinstance(constant(node.args[0]), str):
            name = node.args[0].value
            if tracked(name, self.graph.tops) and self.graph.module(name) is not None:
                self.edges.append(self.graph.whole(name))
        return self.generic_visit(node)

    def visit_Import(self, node: ast.AST) -> None:   # what it binds is in the edges
        return None

    visit_ImportFrom = visit_Import


def _pure(call: ast.Call) -> bool:
    """Whether a call's arguments only read names, constants and attributes (a call or an
    assignment among them could change a value that a result depends on)."""
    allowed = (ast.Name, ast.Constant, ast.Attribute, ast.Load, ast.keyword, ast.Tuple, ast.JoinedStr,
               ast.FormattedValue)
    return all(isinstance(n, allowed) for arg in [*call.args, *call.keywords] for n in ast.walk(arg))


def _local_imports(node: ast.AST, package: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    for child in ast.walk(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            out.update(import_binds(child, package))
    return out


_EMPTY = ast.dump(ast.Module(body=[], type_ignores=[]), annotate_fields=False)


def _shallow(graph: _Graph, unit: Unit) -> _Shallow:
    """``unit``'s normalized tree and edges."""
    if unit not in graph.shallow:
        graph.shallow[unit] = shallow = _normalized(graph, unit)
        for star in graph.module(unit[0]).stars:   # ``from x import *``: every definition of x may be named
            if tracked(star, graph.tops):
                shallow.edges.append(graph.whole(star))
    return graph.shallow[unit]


def _has_statements(graph: _Graph, module: str) -> bool:
    return _shallow(graph, (module, "")).tree != _EMPTY


def _normalized(graph: _Graph, unit: Unit) -> _Shallow:
    module = graph.module(unit[0])
    if unit[1]:
        node = copy.deepcopy(module.defs[unit[1]])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.name = ""
        else:   # an assignment: its value, not the names it binds
            node = node.value if node.value is not None else ast.Constant(None)
        body = [node]
    else:
        body = copy.deepcopy(module.side)
    for node in body:
        _strip_docstrings(node)
    normalizer = _Normalizer(graph, module, _local_imports(ast.Module(body=body, type_ignores=[]), module.package))
    kept = [n for n in (normalizer.visit(n) for n in body) if n is not None and not _empty(n)]
    return _Shallow(ast.dump(ast.Module(body=kept, type_ignores=[]), annotate_fields=False), normalizer.edges)


def _empty(node: ast.AST) -> bool:
    """A statement left with nothing to do once its imports are gone (``if TYPE_CHECKING:``)."""
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, (ast.If, ast.Try)):
        blocks = [node.body, node.orelse, getattr(node, "finalbody", [])]
        blocks += [h.body for h in getattr(node, "handlers", [])]
        return all(all(_empty(n) for n in block) for block in blocks)
    return False


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _digests(graph: _Graph, roots: list[Unit], pins: dict[Unit, str] | None = None) -> dict[Unit, str]:
    """The Merkle digest of every unit reached from ``roots`` (Tarjan's strongly connected
    components, so that definitions naming each other get digests ordered by content); a unit of
    ``pins`` outside any cycle takes the digest given (``BY_OUTPUT``), what it names still counts."""
    pins = pins or {}
    shallow = graph.shallow
    index: dict[Unit, int] = {}
    low: dict[Unit, int] = {}
    stack: list[Unit] = []
    on_stack: set[Unit] = set()
    out: dict[Unit, str] = {}

    def successors(unit: Unit) -> list[Unit]:
        return [u for edge in _shallow(graph, unit).edges if edge != PLUMBING for u in edge]

    def finish(component: list[Unit]) -> None:
        members = set(component)
        # within a cycle, a reference to a member reads as the member's rank by shallow content
        ranked = sorted(component, key=lambda u: _sha(shallow[u].tree))
        rank = {u: str(i) for i, u in enumerate(ranked)}
        for unit in component:
            refs = []
            for edge in shallow[unit].edges:
                if edge == PLUMBING:
                    refs.append(PLUMBING)
                else:
                    refs.append(",".join(sorted(f"cycle:{rank[u]}" if u in members else out[u] for u in edge)))
            out[unit] = _sha(shallow[unit].tree, *refs)
        if len(component) == 1 and component[0] in pins:
            out[component[0]] = pins[component[0]]
        if len(component) > 1:   # one digest per member that also says the cycle it belongs to
            whole = _sha(*sorted(out[u] for u in component))
            for unit in component:
                out[unit] = _sha(out[unit], whole)

    # iterative Tarjan: deep call chains must not hit the recursion limit
    for root in roots:
        if root in index:
            continue
        work = [(root, iter(successors(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            unit, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors(child))))
                    advanced = True
                    break
                if child in on_stack:
                    low[unit] = min(low[unit], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[unit])
            if low[unit] == index[unit]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == unit:
                        break
                finish(component)
    return out


# -- what callers use ----------------------------------------------------------------------------

Root = Any   # a module name ("pkg.mod"), a definition ("pkg.mod:name"), or the object itself


def _root_name(root: Root) -> str:
    if isinstance(root, str):
        return root
    if isinstance(root, ModuleType):
        return root.__name__
    qualname = getattr(root, "__qualname__", "")
    return f"{root.__module__}:{qualname.split('.')[0]}"   # a method or nested function: its top-level definition


def code_units(*roots: Root, pins: dict[str, str] | None = None) -> dict[str, str]:
    """``digest -> label`` of every definition reached from ``roots`` (each a module, counted
    whole, or one top-level definition). The labels (``module:name``) are for people: where a
    definition lives is no part of its digest. ``pins``: ``label -> digest`` of ``BY_OUTPUT``
    definitions taken as given (a record's check)."""
    names = sorted({_root_name(r) for r in roots})
    pinned = tuple(sorted((label, d) for label, d in (pins or {}).items() if label in BY_OUTPUT))
    return dict(_code_units(tuple(names), tuple(sys.path), pinned))


_GRAPHS: dict[tuple, _Graph] = {}


def _graph(tops: frozenset[str], search_path: tuple[str, ...]) -> _Graph:
    """One graph per plugin set and import path, reused while none of the files it read has
    changed: the records of a board share most of their definitions."""
    graph = _GRAPHS.get((tops, search_path))
    try:
        if graph is not None and all(file_stamp(path) == stamp for path, stamp in graph.files.items()):
            return graph
    except OSError:
        pass
    graph = _GRAPHS[(tops, search_path)] = _Graph(tops, search_path)
    return graph


def _code_units(names: tuple[str, ...], search_path: tuple[str, ...],
                pinned: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    entry = _identity_store.key(names, pinned)   # not the import path: each module's file is checked
    kept = _identity_store.load(entry, search_path)   # another process's answer, if no module changed
    if kept is not None:
        return kept
    tops = frozenset(n.split(":")[0].split(".")[0] for n in names)
    graph = _graph(tops, search_path)
    start: list[Unit] = []
    for name in names:
        module, _, definition = name.partition(":")
        if definition and graph.module(module) is not None and definition in graph.module(module).defs:
            start.append((module, definition))
        else:   # a module, or a definition not at its top level (a lambda): the whole module
            whole = graph.whole(module)
            start += whole if isinstance(whole, list) else []
    # A module's other statements (a registration, a global setting) count with any of its
    # definitions: a unit of their own, so that a definition moved between modules keeps its digest.
    pins = {tuple(label.split(":", 1)): d for label, d in pinned}
    while True:
        digests = _digests(graph, start, pins)
        more = sorted({(m, "") for m, _ in digests if (m, "") not in digests and _has_statements(graph, m)})
        if not more:
            break
        start += more
    answer = tuple(sorted((d, f"{m}:{n}" if n else f"{m}:<module statements>") for (m, n), d in digests.items()))
    _identity_store.save(entry, search_path, graph.found, answer)   # the graph's every lookup: a superset, so safe
    return answer


def digest(units: dict[str, str]) -> str:
    """One digest of a set of definitions (their labels do not count)."""
    return hashlib.sha256(repr(sorted(units)).encode()).hexdigest()[:16]


def dependencies(*roots: Root) -> dict[str, Any]:
    """What a run record keeps of its code: the digest of every definition it reached, and the
    numerical libraries' versions."""
    return {"scheme": SCHEME, "definitions": code_units(*roots), "libraries": library_versions()}


def stale_reasons(recorded: dict | None, *roots: Root) -> list[str]:
    """Why a result made with ``recorded`` dependencies may differ if made now from ``roots``
    (empty: it would not)."""
    if not recorded or not isinstance(recorded.get("definitions"), dict):
        return ["its code is not recorded in the current scheme (records kept module fingerprints before): rerun it"]
    pins = {label: d for d, label in recorded["definitions"].items() if label in BY_OUTPUT}
    return changes(recorded, {"definitions": code_units(*roots, pins=pins), "libraries": library_versions()})


def library_versions() -> dict[str, str | None]:
    """The numerical libraries a result depends on (results move with them), and the Python
    version (the syntax trees are of its grammar)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)   # read once a process: installing a library under a running one is no use case
def _library_versions() -> tuple[tuple[str, str | None], ...]:
    out: dict[str, str | None] = {"python": "%d.%d" % sys.version_info[:2]}
    for dist in LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return tuple(out.items())


def changes(recorded: dict, current: dict) -> list[str]:
    """What differs between two ``{"definitions": ..., "libraries": ...}`` descriptions, one
    short phrase each (``collm_bench.llm.scorer:LLMScorer changed``, ``torch 2.12.0 -> 2.13.0``). A
    definition that only moved or was renamed has the same digest: no change."""
    old, new = recorded.get("definitions") or {}, current.get("definitions") or {}
    gone = {old[d] for d in set(old) - set(new)}
    came = {new[d] for d in set(new) - set(old)}
    out = [f"{label} changed" for label in sorted(gone & came)]
    out += [f"{label} added" for label in sorted(came - gone)]
    out += [f"{label} removed" for label in sorted(gone - came)]
    old_libs, new_libs = recorded.get("libraries") or {}, current.get("libraries") or {}
    out += [f"{lib} {old_libs.get(lib)} -> {new_libs.get(lib)}" for lib in sorted(set(old_libs) | set(new_libs))
            if old_libs.get(lib) != new_libs.get(lib)]
    return out
