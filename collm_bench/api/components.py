"""What a plugin registers: one small, typed spec per component kind.

Specs hold explicit callables and option dataclasses, never whole config objects;
the harness validates options against the dataclass before anything is built.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from collm_bench.errors import UserError, did_you_mean


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset.

    ``prepare(target, source)`` writes the prepared format (``collm_bench.data.format``)
    into the empty directory ``target``; ``source`` is an optional user-given local path to
    the raw data. ``protocol`` names the processing version: changing it invalidates caches.
    """

    name: str
    prepare: Callable[[Path, "str | None"], None]
    description: str
    protocol: str = "1"


@dataclass(frozen=True)
class EncoderSpec:
    """A collaborative encoder (MF, LightGCN, ...), usable alone and inside CoLLM.

    ``build(n_users=..., n_items=..., history_len=..., train_users=..., train_items=...,
    train_labels=..., **model_options)`` returns a torch module following the protocol of
    ``collm_bench.encoders.training``. ``train_users`` / ``train_items`` / ``train_labels`` are the
    dense-index arrays of the train split (graph encoders such as LightGCN build their graph
    from them); ``build`` must accept them, and may ignore them (``**_``).
    ``collm_bench.encoders.training.build_encoder`` makes this call. ``options`` is a dataclass of all
    options with the paper's defaults; its fields are split by ``model_fields`` (passed to
    ``build``) versus training options (``lr``, ``weight_decay``, ``batch_size``,
    ``max_epochs``, ``patience``, ``history_len``: passed to ``collm_bench.encoders.training.fit``;
    ``history_len`` also reaches ``build``, 0 for encoders without history).
    """

    name: str
    build: Callable[..., Any]
    options: type
    description: str
    model_fields: tuple[str, ...] = ()
    uses_history: bool = False


@dataclass(frozen=True)
class BackboneSpec:
    """An LLM backbone. ``load(options)`` takes an instance of ``options`` (by default
    ``collm_bench.llm.backbone.BackboneOptions``) and returns a ``collm_bench.llm.backbone.Backbone``.
    ``kind`` (``causal`` / ``encoder``) says what ``load`` will give where that is known in
    advance, so that a method needing an LM head can refuse before any weights load
    (``None``: known only once loaded, e.g. ``hf:<id>``)."""

    name: str
    load: Callable[..., Any]
    description: str
    options: type | None = None
    kind: str | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A method, i.e. a leaderboard row.

    ``run(context: collm_bench.api.methods.MethodContext) -> collm_bench.api.methods.MethodOutput``.
    ``encoder`` / ``backbone`` name the defaults of a method that uses a collaborative encoder
    or an LLM backbone (``None``: the method takes none, and ``--encoder``/``--backbone`` are
    refused). ``eval_sample`` is the default number of test rows to sample on a CPU (drawn
    within every user, the same sample for every method), or ``None`` to score the whole test split.
    ``resolve_options(options) -> options`` returns the options as the run will use and record
    them (presets applied): with it, a run's id is known before it runs (``collm-bench suite``
    skips runs that exist). Without it the options are recorded as given, unless the method's
    output states them (``MethodOutput.options``); a suite then cannot foresee the id and
    reruns such an entry. ``companions(options, encoder, backbone) -> list[Companion]`` declares
    the rows a run writes beside its own (``MethodOutput.companions``), from its resolved
    options: a suite's plan then lists them, and a refresh keeps their records.
    """

    name: str
    run: Callable[..., Any]
    description: str
    options: type | None = None
    encoder: str | None = None
    backbone: str | None = None
    eval_sample: Callable[[Any], "int | None"] | None = None
    resolve_options: Callable[[Any], Any] | None = None
    companions: Callable[[Any, "str | None", "str | None"], "list[Companion]"] | None = None


@dataclass(frozen=True)
class Companion:
    """A leaderboard row a method's run writes beside its own, as a direct run of ``method``
    writes it (the two share a run id): the options it records (None: the method takes none),
    and the encoder and backbone it names (None: none)."""

    method: str
    options: dict[str, Any] | None = None
    encoder: str | None = None
    backbone: str | None = None


@dataclass(frozen=True)
class MetricSpec:
    """A metric, as records store it (under ``name``, per subset) and leaderboards show it
    (``title``).

    ``compute(labels, scores) -> float`` over a set of rows (NaN where undefined). Global
    metrics take all rows of a subset at once; ``per_user`` ones are computed for each user
    who counts (at least 2 rows and both labels: CoLLM's rule, whose counts records keep) and
    averaged, each user weighing 1 (``weight="user"``) or their number of rows (``"rows"``).
    Scores are the methods' logits (``sigmoid(score)`` is the predicted probability).
    """

    name: str
    title: str
    compute: Callable[[Any, Any], float]
    description: str
    higher_is_better: bool = True
    per_user: bool = False
    weight: str = "user"


KINDS = {
    DatasetSpec: "dataset",
    EncoderSpec: "encoder",
    BackboneSpec: "backbone",
    MethodSpec: "method",
    MetricSpec: "metric",
}


def option(default: Any = dataclasses.MISSING, *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None, choices: tuple[str, ...] | None = None, help: str = "",
           groups: tuple[str, ...] = ()) -> Any:
    """A dataclass field with what ``parse_options`` checks and ``collm-bench plugins`` shows:
    bounds (``ge``/``gt``/``le``/``lt``, applied to each element of a tuple and skipped for ``None``),
    allowed ``choices`` of a string, and a one-line ``help``. Float values must be finite
    whatever the bounds say (an ``inf`` learning rate trains NaNs for minutes before failing).
    ``groups`` name what reads the option (``collm_bench.cache.options``): a cached stage that
    reads a group has every option of the group in its key, and may read no other."""
    if isinstance(groups, str) or not all(isinstance(g, str) and g for g in groups):
        raise TypeError(f"option groups must be a tuple of names, got {groups!r}")
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": tuple(choices) if choices else None, "help": help,
            "groups": tuple(groups)}
    return dataclasses.field(default=default, metadata={OPTION_META: meta})


OPTION_META = "collm_bench.option"


# The keyword arguments of ``collm_bench.encoders.training.fit`` that every encoder's options carry:
# checked for every encoder, built-in or third-party, unless its own ``option(...)`` says more.
ENCODER_TRAINING_BOUNDS: dict[str, dict[str, Any]] = {
    "lr": {"gt": 0, "help": "learning rate (Adam)"},
    "weight_decay": {"ge": 0, "help": "weight decay"},
    "batch_size": {"ge": 1, "help": "rows per training batch"},
    "max_epochs": {"ge": 1, "help": "epoch budget"},
    "patience": {"ge": 1, "help": "epochs without a better valid AUC before stopping"},
    "history_len": {"ge": 0, "help": "past positives read (0: none; default: the dataset's)"},
}


def parse_options(options_cls: type, overrides: Mapping[str, Any], *, owner: str,
                  bounds: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """Build an options dataclass from user overrides; unknown keys, bad types and values out of
    range are errors, all before anything is built.

    Strings (from the command line) are converted to the field's annotated type
    (``int``, ``float``, ``bool``, ``str``, ``tuple[...]``, or ``X | None`` where ``none``
    gives ``None``); other values must already have that type. Each field is then checked
    against its ``option(...)`` bounds and choices, and floats for finiteness. A dataclass may
    validate values further in ``__post_init__`` by raising ``ValueError``; that becomes a
    one-line ``UserError`` too. ``bounds`` gives the checks of fields that declare none
    (``ENCODER_TRAINING_BOUNDS`` for encoders).
    """
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    kwargs: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise UserError(
                f"{owner}: unknown option {key!r}{did_you_mean(key, fields)}; "
                f"options: {', '.join(fields)}"
            )
        kwargs[key] = _coerce(value, hints.get(key, str), owner=owner, key=key)
    for key, value in kwargs.items():
        meta = fields[key].metadata.get(OPTION_META) or (bounds or {}).get(key) or {}
        _check_value(value, meta, owner=owner, key=key)
    try:
        return options_cls(**kwargs)
    except ValueError as exc:
        raise UserError(f"{owner}: {exc}") from None


def _check_value(value: Any, meta: Mapping[str, Any], *, owner: str, key: str) -> None:
    """Bounds, choices and finiteness of one option value (each element of a tuple)."""
    for item in value if isinstance(value, tuple) else (value,):
        if item is None or isinstance(item, bool):
            continue
        allowed = _allowed(meta)
        if isinstance(item, float) and not math.isfinite(item):
            raise UserError(f"{owner}: option {key!r} got {item!r}; allowed: a finite number"
                            + (f" {allowed}" if allowed else ""))
        if isinstance(item, (int, float)):
            bad = ((meta.get("ge") is not None and item < meta["ge"])
                   or (meta.get("gt") is not None and item <= meta["gt"])
                   or (meta.get("le") is not None and item > meta["le"])
                   or (meta.get("lt") is not None and item >= meta["lt"]))
            if bad:
                raise UserError(f"{owner}: option {key!r} got {item!r}; allowed: {allowed}")
        elif meta.get("choices") and item not in meta["choices"]:
            raise UserError(f"{owner}: option {key!r} got {item!r}; allowed: {allowed}")


def _allowed(meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return "one of " + ", ".join(meta["choices"])
    parts = [f"{op} {meta[k]:g}" for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if meta.get(k) is not None]
    return " and ".join(parts)


def describe_options(options_cls: type | None, bounds: Mapping[str, Mapping[str, Any]] | None = None
                     ) -> list[dict[str, Any]]:
    """Each option of a dataclass: name, type, default, allowed values and help (for listings);
    ``bounds`` as for ``parse_options``."""
    if options_cls is None:
        return []
    hints = typing.get_type_hints(options_cls)
    out = []
    for f in dataclasses.fields(options_cls):
        meta = f.metadata.get(OPTION_META) or (bounds or {}).get(f.name) or {}
        default = f.default if f.default is not dataclasses.MISSING else None
        hint = hints.get(f.name, str)
        out.append({"name": f.name, "type": getattr(hint, "__name__", None) or str(hint).replace("typing.", ""),
                    "default": json_ready(default), "allowed": _allowed(meta), "help": meta.get("help", ""),
                    "read by": ", ".join(meta.get("groups") or ())})
    return out


def _coerce(value: Any, hint: Any, *, owner: str, key: str) -> Any:
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    name = getattr(hint, "__name__", str(hint))
    if not isinstance(value, str):
        if origin is tuple and isinstance(value, (list, tuple)):
            kind = args[0] if args else str
            return tuple(_coerce(v, kind, owner=owner, key=key) for v in value)
        ok = (isinstance(value, bool) if hint is bool else
              isinstance(value, int) and not isinstance(value, bool) if hint is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float else
              isinstance(value, hint) if isinstance(hint, type) else True)
        if not ok:
            raise UserError(f"{owner}: option {key!r} expects {name}, got {value!r}")
        return float(value) if hint is float else value
    try:
        if hint is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint in (int, float):
            return hint(value)
        if origin is tuple:
            kind = args[0] if args else str
            return tuple(kind(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{owner}: option {key!r} expects {name}, got {value!r}") from None
    return value


def options_dict(options: Any) -> dict[str, Any]:
    """A JSON-ready dict of an options dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(options))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value

