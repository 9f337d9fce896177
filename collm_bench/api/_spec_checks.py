"""What a registered spec must hold, checked when its plugin registers it (not deep inside a
run): callables where the harness will call, options that ``--set`` can fill, an encoder's
training fields. Each problem is one ``TypeError`` naming the component and what to fix; the
plugin manager reports it against the plugin, which is then skipped."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any

from collm_bench.api.components import BackboneSpec, DatasetSpec, EncoderSpec, MethodSpec, MetricSpec

ENCODER_TRAINING_FIELDS = ("lr", "weight_decay", "batch_size", "max_epochs", "patience", "history_len")
_SCALARS = (int, float, bool, str)


def check_spec(kind: str, spec: Any) -> None:
    """Raise ``TypeError`` with one line when ``spec`` breaks its kind's contract."""
    where = f"{kind} {getattr(spec, 'name', '?')!r}"
    for field in ("description",):
        if not isinstance(getattr(spec, field, None), str):
            raise TypeError(f"{where}: {field} must be a string")
    calls = {DatasetSpec: ("prepare",), EncoderSpec: ("build",), BackboneSpec: ("load",), MethodSpec: ("run",),
             MetricSpec: ("compute",)}
    for field in calls[type(spec)]:
        if not callable(getattr(spec, field)):
            raise TypeError(f"{where}: {field} must be callable, got {type(getattr(spec, field)).__name__}")
    if isinstance(spec, MethodSpec):
        for field in ("eval_sample", "resolve_options"):
            if getattr(spec, field) is not None and not callable(getattr(spec, field)):
                raise TypeError(f"{where}: {field} must be callable or None")
    if isinstance(spec, DatasetSpec) and not isinstance(spec.protocol, str):
        raise TypeError(f"{where}: protocol must be a string (it names the processing version)")
    if isinstance(spec, MetricSpec) and (spec.weight not in ("user", "rows") or not isinstance(spec.title, str)):
        raise TypeError(f"{where}: weight must be 'user' or 'rows' and title a string")
    if isinstance(spec, BackboneSpec) and spec.kind not in (None, "causal", "encoder"):
        raise TypeError(f"{where}: kind must be 'causal', 'encoder' or None, got {spec.kind!r}")
    options = getattr(spec, "options", None)
    if options is None:
        if isinstance(spec, EncoderSpec):
            raise TypeError(f"{where}: options must be a dataclass with the training fields "
                            f"{', '.join(ENCODER_TRAINING_FIELDS)}")
        return
    _check_options(where, options)
    if isinstance(spec, EncoderSpec):
        names = {f.name for f in dataclasses.fields(options)}
        missing = [f for f in ENCODER_TRAINING_FIELDS if f not in names]
        if missing:
            raise TypeError(f"{where}: options lack the training field(s) {', '.join(missing)} "
                            "(collm_bench.encoders.training.fit reads them)")
        unknown = [f for f in spec.model_fields if f not in names]
        if unknown:
            raise TypeError(f"{where}: model_fields names {', '.join(unknown)}, not fields of {options.__name__}")


def _check_options(where: str, options: Any) -> None:
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise TypeError(f"{where}: options must be a dataclass type, got {options!r}")
    try:
        hints = typing.get_type_hints(options)
    except Exception as exc:  # noqa: BLE001 - an annotation that does not resolve
        raise TypeError(f"{where}: the annotations of {options.__name__} do not resolve ({exc})") from None
    for field in dataclasses.fields(options):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise TypeError(f"{where}: option {field.name!r} has no default (every option needs one)")
        if not _settable(hints.get(field.name)):
            raise TypeError(f"{where}: option {field.name!r} has type {hints.get(field.name)!r}, which --set cannot "
                            "give; use int, float, bool, str, tuple[...] of those, or X | None")


def _settable(hint: Any) -> bool:
    """Whether ``--set key=value`` can produce a value of ``hint`` (see ``parse_options``)."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and _settable(rest[0])
    if hint in _SCALARS:
        return True
    if typing.get_origin(hint) is tuple:
        return bool(args) and all(a in _SCALARS for a in args if a is not Ellipsis)
    return False
