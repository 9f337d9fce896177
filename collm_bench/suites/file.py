"""The suite file (TOML): what a matrix of runs is, read and checked for shape before anything
looks at the registry or the data.

```toml
[suite]
description = "Table II on ml-100k with MiniLM"
out = "runs/table2"            # output root, relative to this file (--out overrides)
datasets = ["ml-100k"]         # every axis takes a list (plural key) or one value (singular)
backbones = ["minilm"]         # used by the methods that take a backbone
seeds = [0]
full_test = true               # or sample_test = 3000; neither: each method's own default
table = 2                      # the paper table that `suite` prints (and --output writes)

[options.collm]                # method options by method name, for every entry of that method
preset = "cpu"
[encoder_options.mf]           # encoder options by encoder name (alone or inside CoLLM)
dim = 256
[backbone_options.minilm]      # backbone options by backbone name

[[entry]]
method = "collm"
encoders = ["mf", "lightgcn", "sasrec", "din"]
options = { step2_lr = 0.01 }  # this entry only, over [options.collm]

[[entry]]
name = "mf+tallrec"            # default: the method's name; names are unique
method = "ensemble"
members = ["mf", "tallrec"]    # entries (names) or rows (labels such as collm-mf) it averages

[[entry]]
method = "llara"
plugin = "collm-bench-llara"   # an optional plugin: its runs are skipped, not refused, where it
                               # is not installed (an unknown name is still refused)
```

Axes: ``datasets``, ``methods``, ``encoders``, ``backbones``, ``seeds``, ``strategies``; an
entry's own axis replaces the suite's. Option values become strings exactly as ``--set``
would pass them, so that a suite and the command line give the same run ids.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collm_bench.errors import UserError, did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

AXES = {"datasets": "dataset", "methods": "method", "encoders": "encoder", "backbones": "backbone",
        "seeds": "seed", "strategies": "strategy"}
TOP_KEYS = ("suite", "options", "encoder_options", "backbone_options", "resources", "entry")
SUITE_KEYS = ("description", "out", "full_test", "sample_test", "table") + tuple(
    k for plural, single in AXES.items() if plural != "methods" for k in (plural, single))
ENTRY_KEYS = ("name", "options", "encoder_options", "backbone_options", "members", "full_test",
              "sample_test", "plugin", "resources") + tuple(k for plural, single in AXES.items() for k in (plural, single))
# What a cell asks of a cluster (``suite --cluster``, ``collm_bench.suites.cluster``): the key, its
# type, and the least value it may take (None: any string).
RESOURCES = {"gpus": (int, 0), "cpus": (int, 1), "mem_gb": (float, 0.1), "time_min": (int, 1),
             "partition": (str, None), "account": (str, None), "qos": (str, None), "constraint": (str, None)}
OPTION_TABLES = ("options", "encoder_options", "backbone_options")
# Options that run code from outside the project: only the command line may switch them on, so
# that running someone's suite file never executes code shipped with a model folder.
COMMAND_LINE_ONLY = ("trust_remote_code",)
TABLES = range(2, 8)
DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")   # a PyPI project name


@dataclass(frozen=True)
class Entry:
    """One ``[[entry]]``: a method (or several) and the axes it is crossed with."""

    index: int                                    # 1-based position in the file
    name: str
    methods: tuple[str, ...]
    axes: dict[str, tuple[Any, ...]]              # only the axes the entry sets itself
    options: dict[str, str] = field(default_factory=dict)
    encoder_options: dict[str, str] = field(default_factory=dict)
    backbone_options: dict[str, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    full_test: bool | None = None
    sample_test: int | None = None
    plugin: str | None = None                     # the distribution its components come from, if optional
    resources: dict[str, Any] = field(default_factory=dict)   # over [resources], for --cluster

    @property
    def where(self) -> str:
        return f"entry {self.index} ({self.name!r})"


@dataclass(frozen=True)
class SuiteFile:
    path: Path
    description: str
    out: Path
    axes: dict[str, tuple[Any, ...]]              # suite-wide axes (datasets and seeds always set)
    full_test: bool
    sample_test: int | None
    table: int | None
    options: dict[str, dict[str, dict[str, str]]]  # "options" | "encoder_options" | ... -> name -> values
    entries: tuple[Entry, ...]
    resources: dict[str, Any] = field(default_factory=dict)   # what each cell asks of a cluster


def read_suite(path: str | Path) -> SuiteFile:
    """Parse and shape-check a suite file; names and options are checked later against the registry."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such suite file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None
    where = str(path)
    _check_keys(raw, TOP_KEYS, where)
    suite = raw.get("suite", {})
    _check_table(suite, f"{where}: [suite]")
    _check_keys(suite, SUITE_KEYS, f"{where}: [suite]")
    axes = _axes(suite, f"{where}: [suite]")
    axes.setdefault("datasets", ("ml-100k",))
    axes.setdefault("seeds", (0,))
    options = {}
    for table in OPTION_TABLES:
        by_name = raw.get(table, {})
        _check_table(by_name, f"{where}: [{table}]")
        for name, values in by_name.items():
            _check_table(values, f"{where}: [{table}.{name}]")
        options[table] = {name: _option_values(values, f"{where}: [{table}.{name}]")
                          for name, values in by_name.items()}
    resources = read_resources(raw.get("resources", {}), f"{where}: [resources]")
    entries_raw = raw.get("entry", [])
    if not isinstance(entries_raw, list) or not entries_raw:
        raise UserError(f"{where}: no [[entry]] tables: a suite runs at least one entry")
    entries = tuple(_entry(i + 1, e, where) for i, e in enumerate(entries_raw))
    seen: set[str] = set()
    for entry in entries:   # a set, not a count per entry: a file of 40,000 entries took 20 s here
        if entry.name in seen:
            raise UserError(f"{where}: two entries are named {entry.name!r}: give each a unique name = \"...\"")
        seen.add(entry.name)
    table = suite.get("table")
    if table is not None and (not isinstance(table, int) or isinstance(table, bool) or table not in TABLES):
        raise UserError(f"{where}: [suite] table must be one of {TABLES.start}..{TABLES.stop - 1} "
                        f"(the paper's tables), got {table!r}")
    full_test, sample_test = _evaluation(suite, f"{where}: [suite]")
    if not isinstance(suite.get("out", "runs"), str) or not suite.get("out", "runs"):
        raise UserError(f"{where}: [suite] out must be a folder name (a string), got {suite.get('out')!r}")
    if not isinstance(suite.get("description", ""), str):
        raise UserError(f"{where}: [suite] description must be a string")
    out = Path(str(suite.get("out", "runs")))
    return SuiteFile(path=path, description=str(suite.get("description", "")),
                     out=out if out.is_absolute() else path.parent / out, axes=axes,
                     full_test=bool(full_test), sample_test=sample_test, table=table, options=options,
                     entries=entries, resources=resources)


def _entry(index: int, raw: Any, where: str) -> Entry:
    label = f"{where}: entry {index}"
    _check_table(raw, label)
    _check_keys(raw, ENTRY_KEYS, label)
    axes = _axes(raw, label)
    methods = axes.pop("methods", None)
    if not methods:
        raise UserError(f"{label}: needs method = \"...\" (or methods = [...])")
    name = raw.get("name", "+".join(methods))
    if not isinstance(name, str) or not name:
        raise UserError(f"{label}: name must be a non-empty string")
    members = raw.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise UserError(f"{label}: members must be a list of entry names or row labels")
    if members and (len(methods) > 1):
        raise UserError(f"{label}: an entry with members has one method")
    full_test, sample_test = _evaluation(raw, label)
    if members and (full_test is not None or sample_test is not None):
        raise UserError(f"{label}: an entry with members is evaluated on its members' rows; "
                        "drop full_test / sample_test")
    plugin = raw.get("plugin")
    if plugin is not None and not (isinstance(plugin, str) and DISTRIBUTION.fullmatch(plugin)):
        raise UserError(f"{label}: plugin must be a distribution name such as \"collm-bench-llara\", got {plugin!r}")
    values = {}
    for table in OPTION_TABLES:
        _check_table(raw.get(table, {}), f"{label}: {table}")
        values[table] = _option_values(raw.get(table, {}), f"{label}: {table}")
    resources = read_resources(raw.get("resources", {}), f"{label}: resources")
    return Entry(index=index, name=name, methods=tuple(methods), axes=axes, members=tuple(members),
                 full_test=full_test, sample_test=sample_test, plugin=plugin, resources=resources, **values)


def read_resources(raw: Any, where: str) -> dict[str, Any]:
    """A ``[resources]`` table (or an entry's ``resources``, or ``--resource KEY=VALUE`` pairs),
    checked against ``RESOURCES``."""
    _check_table(raw, where)
    _check_keys(raw, tuple(RESOURCES), where)
    out = {}
    for key, value in raw.items():
        kind, least = RESOURCES[key]
        if kind is str:
            if not isinstance(value, str) or not value or any(c.isspace() for c in value):
                raise UserError(f"{where}: {key} must be a name without spaces, got {value!r}")
        else:
            ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
            if not ok or value < least:
                raise UserError(f"{where}: {key} must be {'a number' if kind is float else 'an integer'} "
                                f">= {least}, got {value!r}")
            value = kind(value)
        out[key] = value
    return out


def _axes(raw: dict[str, Any], where: str) -> dict[str, tuple[Any, ...]]:
    out = {}
    for plural, single in AXES.items():
        if plural in raw and single in raw:
            raise UserError(f"{where}: give {plural} or {single}, not both")
        if plural not in raw and single not in raw:
            continue
        value = raw[plural] if plural in raw else [raw[single]]
        if not isinstance(value, list) or not value:
            raise UserError(f"{where}: {plural} must be a non-empty list")
        kind = int if plural == "seeds" else str
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            raise UserError(f"{where}: {plural} must hold {'integers' if kind is int else 'strings'}, got {value!r}")
        if len(set(value)) != len(value):
            raise UserError(f"{where}: {plural} lists a value twice: {value!r}")
        out[plural] = tuple(value)
    return out


def _evaluation(raw: dict[str, Any], where: str) -> tuple[bool | None, int | None]:
    full, sample = raw.get("full_test"), raw.get("sample_test")
    if full is not None and not isinstance(full, bool):
        raise UserError(f"{where}: full_test must be true or false")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise UserError(f"{where}: sample_test must be a positive integer")
    if full and sample is not None:
        raise UserError(f"{where}: full_test and sample_test exclude each other")
    return full, sample


def _option_values(values: dict[str, Any], where: str) -> dict[str, str]:
    """TOML values as the strings ``--set`` would give (lists comma-joined, booleans true/false)."""
    out = {}
    for key, value in values.items():
        if key in COMMAND_LINE_ONLY:
            raise UserError(f"{where}: option {key!r} cannot be set in a suite file (it runs code shipped with "
                            f"the model); pass --trust-remote-code to collm-bench suite if you trust it")
        if isinstance(value, dict):
            raise UserError(f"{where}: option {key!r} is a table; options take single values or lists")
        if isinstance(value, list):
            out[key] = ",".join(_scalar(v) for v in value)
        else:
            out[key] = _scalar(value)
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_table(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a table")


def _check_keys(raw: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in known:
            raise UserError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}; keys: {', '.join(known)}")
