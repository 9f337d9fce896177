"""Plugin manager: entry-point discovery, registration, isolation of broken plugins.

Every component, built-in or third-party, arrives through the ``collm_bench`` entry-point
group and the registration hooks of ``hookspecs.py``. A plugin that fails to import, fails
hook validation, raises inside a hook or registers a name that is already taken is skipped
as a whole and reported in ``collm-bench plugins``; it never takes the harness down.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from collm_bench.api import hookspecs
from collm_bench.api.components import KINDS
from collm_bench.api.loggers import LoggerSpec
from collm_bench.records.record import COUNTS   # a record's counts, beside the metrics of each subset
from collm_bench.errors import unknown_name
from collm_bench._util.paths import check_name
from collm_bench.api._spec_checks import check_spec

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

PROJECT = "collm_bench"
hookimpl = pluggy.HookimplMarker(PROJECT)

REGISTRATION_HOOKS = {
    "dataset": "register_datasets",
    "encoder": "register_encoders",
    "backbone": "register_backbones",
    "method": "register_methods",
    "metric": "register_metrics",
    "logger": "register_loggers",
}


@dataclass(frozen=True)
class Registered:
    kind: str
    name: str
    spec: Any
    plugin: str
    version: str


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    version: str
    error: str


@dataclass
class Registry:
    """The components of all plugins that loaded cleanly, and the failures of the rest."""

    components: dict[str, dict[str, Registered]] = field(
        default_factory=lambda: {kind: {} for kind in REGISTRATION_HOOKS}
    )
    failures: list[PluginFailure] = field(default_factory=list)
    plugins: dict[str, str] = field(default_factory=dict)  # plugin name -> version
    manager: pluggy.PluginManager | None = None
    # plugin name -> seconds its import took, and whether it imported torch (start-up cost)
    imports: dict[str, tuple[float, bool]] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Any:
        """The spec registered as ``name``; an unknown name raises a did-you-mean UserError."""
        try:
            return self.components[kind][name].spec
        except KeyError:
            error = unknown_name(kind, name, self.components[kind])
            if self.failures:  # the name may belong to a plugin that did not load
                names = ", ".join(sorted({f.plugin for f in self.failures}))
                error = type(error)(f"{error} (plugins that failed to load: {names}; see collm-bench plugins)")
            raise error from None

    def entry(self, kind: str, name: str) -> Registered:
        self.get(kind, name)
        return self.components[kind][name]

    def all(self) -> list[Registered]:
        return [r for kind in REGISTRATION_HOOKS for r in self.components[kind].values()]


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _trace(message: str) -> None:
    if os.environ.get("COLLM_BENCH_TRACE_PLUGINS", "") not in ("", "0"):
        print(f"[collm-bench plugins] {message}", file=sys.stderr)


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=PROJECT))
    # Built-ins first, so that a third-party name clash is the one that gets skipped.
    eps.sort(key=lambda ep: (getattr(ep.dist, "name", "") != "collm-bench", ep.name))
    seen: set[tuple[str, str]] = set()
    unique = []
    for ep in eps:  # an editable install can list the very same entry point twice
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            unique.append(ep)
    return unique


def load_registry(extra: Iterable[tuple[str, Any]] = (), *, entry_points: bool = True) -> Registry:
    """Discover, load and register every plugin.

    ``extra`` adds (name, module-or-object) pairs, for tests and embedding.
    ``COLLM_BENCH_LOAD_PLUGINS`` (comma list) loads only the named plugins,
    ``COLLM_BENCH_DISABLE_PLUGINS`` skips the named ones.
    """
    only = _env_list("COLLM_BENCH_LOAD_PLUGINS")
    disabled = _env_list("COLLM_BENCH_DISABLE_PLUGINS") or set()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(manager=pm)

    candidates: list[tuple[str, str, Any, Any]] = []  # (name, version, loader, the module given in extra)
    if entry_points:
        for ep in _entry_points():
            version = ep.dist.version if ep.dist is not None else "unknown"
            candidates.append((ep.name, version, ep.load, None))
    for name, obj in extra:
        candidates.append((name, getattr(obj, "__version__", "unknown"), lambda obj=obj: obj, obj))

    for name, version, load, given in candidates:
        if (only is not None and name not in only) or name in disabled:
            _trace(f"{name}: not loaded (environment switch)")
            continue
        if name in registry.plugins:
            if given is not None and pm.get_plugin(name) is given:   # installed and passed in extra: one plugin
                _trace(f"{name}: passed in extra and installed: loaded once")
                continue
            _fail(registry, name, version, f"plugin name clash: {name!r} is already loaded from another package "
                                           "(pip uninstall one of the two)")
            continue
        started = time.perf_counter()
        had_torch = "torch" in sys.modules
        try:
            plugin = load()
            if isinstance(plugin, str):
                plugin = importlib.import_module(plugin)
            version = getattr(plugin, "__version__", None) or version
            pm.register(plugin, name=name)
            _check_known_hooks(pm, plugin)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must never be fatal
            _fail(registry, name, version, f"failed to load: {describe(exc)}")
            continue
        registry.plugins[name] = version
        registry.imports[name] = (time.perf_counter() - started, not had_torch and "torch" in sys.modules)
        _trace(f"{name} {version}: loaded in {time.perf_counter() - started:.3f}s")

    for plugin_name in list(registry.plugins):
        _register_components(registry, pm, plugin_name)
    known = {name for name, *_ in candidates}
    for variable, names in (("COLLM_BENCH_LOAD_PLUGINS", only or set()), ("COLLM_BENCH_DISABLE_PLUGINS", disabled)):
        for name in sorted(set(names) - known):   # a typo would silently load nothing, or disable nothing
            _fail(registry, name, "-", f"named by ${variable}, but no installed plugin has this name "
                                       f"(installed: {', '.join(sorted(known))})")
    return registry


def _check_known_hooks(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Reject a plugin implementing a hook that does not exist (a typo would be silent)."""
    unknown = [hc.name for hc in pm.get_hookcallers(plugin) or [] if hc.spec is None]
    if unknown:
        pm.unregister(plugin)
        raise pluggy.PluginValidationError(plugin, f"unknown hook(s): {', '.join(unknown)}")
    marked = {hc.name for hc in pm.get_hookcallers(plugin) or []}
    unmarked = [name for name in dir(hookspecs) if name.startswith("register_") and name not in marked
                and callable(getattr(plugin, name, None))]
    if unmarked:  # pluggy would ignore them, and the plugin would register nothing, silently
        pm.unregister(plugin)
        raise pluggy.PluginValidationError(plugin, f"{', '.join(unmarked)} not marked with @collm_bench.hookimpl")


def _register_components(registry: Registry, pm: pluggy.PluginManager, plugin_name: str) -> None:
    version = registry.plugins[plugin_name]
    plugin = pm.get_plugin(plugin_name)
    added: list[Registered] = []

    def register(spec: Any) -> None:
        kinds = {**KINDS, LoggerSpec: "logger"}
        kind = kinds.get(type(spec))
        if kind is None:
            raise TypeError(f"register() got {type(spec).__name__}, expected one of "
                            + ", ".join(t.__name__ for t in kinds))
        if kind != expected_kind:
            raise TypeError(f"{hook_name} registered a {kind}")
        check_name(f"{kind} name", spec.name, fix="rename it in the plugin")  # it reaches paths
        if kind == "metric" and spec.name in COUNTS:   # a record's subset holds these counts beside its metrics
            raise ValueError(f"metric name {spec.name!r} is taken by the count of the same name in every record: "
                             "rename it")
        if kind == "logger":
            if not callable(spec.log):
                raise TypeError(f"logger {spec.name!r}: log must be callable")
        else:
            check_spec(kind, spec)
        table = registry.components[kind]
        if spec.name in table or any(a.kind == kind and a.name == spec.name for a in added):
            owner = table[spec.name].plugin if spec.name in table else plugin_name
            raise ValueError(f"name clash: {kind} {spec.name!r} is already registered by plugin {owner!r}")
        added.append(Registered(kind, spec.name, spec, plugin_name, version))

    try:
        for expected_kind, hook_name in REGISTRATION_HOOKS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin:
                    impl.function(register=register)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - contained like any other failure
        disable_plugin(registry, plugin_name, f"failed to register: {describe(exc)}")
        return
    for entry in added:
        registry.components[entry.kind][entry.name] = entry
        _trace(f"{plugin_name}: registered {entry.kind} {entry.name!r}")


def disable_plugin(registry: Registry, plugin_name: str, error: str) -> None:
    """Take a plugin out (its components too) and report it; used when it fails after loading."""
    version = registry.plugins.pop(plugin_name, "unknown")
    for table in registry.components.values():
        for name in [n for n, r in table.items() if r.plugin == plugin_name]:
            del table[name]
    if registry.manager is not None and registry.manager.get_plugin(plugin_name) is not None:
        registry.manager.unregister(name=plugin_name)
    _fail(registry, plugin_name, version, error)


def _fail(registry: Registry, name: str, version: str, error: str) -> None:
    registry.failures.append(PluginFailure(name, version, error))
    _trace(f"{name}: {error}")
    if os.environ.get("COLLM_BENCH_TRACE_PLUGINS", "") not in ("", "0"):
        traceback.print_exc(file=sys.stderr)


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests); ``None`` reloads it on next use."""
    global _REGISTRY
    _REGISTRY = registry
