"""Leaderboards built from run records alone: one table per dataset.

Runs that share dataset, method, encoder, backbone and evaluation rows are grouped; with
several seeds a cell shows ``mean ± std`` (sample standard deviation).
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

from collm_bench.api.components import json_ready, options_dict
from collm_bench.records.metrics import registered_metrics
from collm_bench.records.store import iter_records, mean_of, mean_std, with_interval
from collm_bench.records.record import RunRecord, unique_runs

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

# Metric columns come from the metric registry (each metric a column where a record of the
# table has it), then the warm/cold AUC of the paper's Figure 3, timings and seeds.
SUBSET_CELLS = {"Warm AUC": ("warm", "auc"), "Cold AUC": ("cold", "auc")}
INTERVAL_NOTE = (" In brackets: 95% intervals of AUC and UAUC by a bootstrap over users (1,000 resamples) of a "
                 "single seed's run; a row of several seeds shows mean ± std across seeds instead. ≈: not "
                 "significantly different from the best row's AUC (paired bootstrap on the same rows, 95%; "
                 "rows of one seed only).")
NO_TIE_TEST = (" No row is marked ≈ here: the best row has several seeds, so there is no one run to pair with "
               "(compare mean ± std).")
TAIL = ("Train s", "Infer s", "Seeds")


def interval_note(rows: list[dict[str, Any]]) -> str:
    """The note under a table: what the intervals and ≈ mean, and when ≈ could not be tested."""
    if not any(row["intervals"] for row in rows):
        return ""
    return INTERVAL_NOTE + (NO_TIE_TEST if len(rows[0]["Seeds"]) > 1 else "")


def ranking_note(rows: list[dict[str, Any]]) -> str:
    """How the rows are ordered, and what an ``undefined`` cell means where one is shown."""
    reasons = sorted({why for row in rows for why in row.get("undefined", {}).values()})
    last = " (rows where it is undefined last)" if any("AUC" in row.get("undefined", {}) for row in rows) else ""
    said = f" Undefined: the metric cannot be computed on the run's rows ({'; '.join(reasons)})." if reasons else ""
    return f"Ranked by AUC{last}.{said}"


def head_note(records: Iterable[RunRecord]) -> str:
    """The sentence saying which backbones score through a learned head instead of the paper's
    Yes token (encoders have no language-model head), or '' when none does."""
    names = sorted({r.backbone for r in records
                    if r.backbone and (r.training.get("backbone") or {}).get("kind") == "encoder"})
    if not names:
        return ""
    return (f" {', '.join(names)}: an encoder with no language-model head, so its LLM rows score with a learned "
            "one-logit head on the first token, tuned with the LoRA weights, not the paper's Yes-token logit.")


def row_digests(records: list[RunRecord]) -> dict[str, str]:
    """Run id -> the digest of its configuration without the seed, which puts the seeds of one
    configuration in one row. An ensemble's configuration names its members' run ids, which
    carry their seed: it takes its members' digests instead (when their records are here)."""
    by_id = {r.run_id: r for r in records}
    out = {}
    for record in records:
        members, digested = record.options.get("runs"), record
        if isinstance(members, list) and members and all(m in by_id for m in members):
            options = {**record.options, "runs": [by_id[m].config_digest for m in members]}
            digested = dataclasses.replace(record, data={**record.data, "config": {**record.config, "options": options}})
        out[record.run_id] = digested.config_digest
    return out


def collect(records: Iterable[RunRecord | dict[str, Any]], registry=None) -> dict[str, list[dict[str, Any]]]:
    """Rows per dataset, each row aggregating the runs of one configuration over seeds (a run
    found in several folders counts once). A row run with options other than its method's
    defaults names them; ``registry`` gives the defaults (the loaded plugins by default)."""
    if registry is None:
        from collm_bench.api.registry import get_registry

        registry = get_registry()
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    records = unique_runs(records)
    digests = row_digests(records)
    for record in records:
        backbone = record.backbone or ""
        if record.meaningless:  # a random-weight backbone, or an ensemble with such a member
            backbone = f"{backbone} (random weights: meaningless)" if backbone else "random weights: meaningless"
        label = record.row_label
        changed = non_default_options(record, registry)
        if changed:
            label = f"{label} ({', '.join(changed)})"
        groups[(record.dataset, label, backbone, record.evaluated_rows, digests[record.run_id])].append(record)
    # Rows that share a name but not a configuration (another strategy, other options) are told
    # apart by their configuration key.
    names = defaultdict(set)
    for dataset, label, backbone, _, config in groups:
        names[(dataset, label, backbone)].add(config)
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (dataset, label, backbone, evaluated, config), runs in sorted(groups.items()):
        if len(names[(dataset, label, backbone)]) > 1:
            label = f"{label} [{config}]"
        runs = sorted(runs, key=lambda r: r.seed)
        row: dict[str, Any] = {"Method": label, "Backbone": backbone or "-", "evaluated": evaluated}
        cells = {spec.title: ("overall", spec.name) for spec in registered_metrics(registry)} | SUBSET_CELLS
        row["undefined"] = {}
        for column, (subset, metric) in cells.items():
            row[column] = [r.metric(metric, subset) for r in runs]
            why = [r.undefined(metric, subset) for r in runs]
            if all(why):   # undefined on every seed's rows: said in the cell, not left blank
                row["undefined"][column] = why[0]
        row["Train s"] = [r.timing("train_seconds") for r in runs]
        row["Infer s"] = [r.timing("inference_seconds") for r in runs]
        row["Seeds"] = [r.seed for r in runs]
        row["runs"] = [r.run_id for r in runs]
        kept = runs[0].intervals if len(runs) == 1 else {}
        row["intervals"] = {k: kept[k] for k in ("auc", "uauc") if k in kept} or None
        row["_record"] = runs[0] if len(runs) == 1 else None  # one seed's stored samples pair; a mean's do not
        tables[dataset].append(row)
    for rows in tables.values():  # ranked by AUC (mean over seeds), best first; rows without one last
        rows.sort(key=lambda row: -mean_of(row["AUC"]) if mean_of(row["AUC"]) is not None else math.inf)
        _mark_ties_with_the_best(rows)
    return dict(tables)


def same_draws(a: RunRecord, b: RunRecord) -> bool:
    """Whether the stored bootstrap resamples of ``a`` and ``b`` are the same draws of the same
    users' rows (same split, same evaluated rows, same users, seed and count), so their samples
    pair. Records from before USER_ORDER (drawn by sorted user id) name no ``users`` and pair with none."""
    ia, ib = a.intervals, b.intervals
    return (a.dataset_sha256 is not None and a.dataset_sha256 == b.dataset_sha256 and a.evaluation == b.evaluation
            and all(ia.get(k) is not None and ia.get(k) == ib.get(k) for k in ("users", "seed", "resamples")))


def paired_auc_difference(a: RunRecord, b: RunRecord) -> tuple[float, float] | None:
    """The paired 95% bootstrap interval of AUC(a) - AUC(b) from their stored samples; None when
    they do not pair (see ``same_draws``) or either has none."""
    if not same_draws(a, b):
        return None
    from collm_bench.records.bootstrap import paired_from_samples

    return paired_from_samples((a.intervals.get("samples") or {}).get("auc"),
                               (b.intervals.get("samples") or {}).get("auc"))


def _mark_ties_with_the_best(rows: list[dict[str, Any]]) -> None:
    """``≈`` after the name of each row whose AUC a paired bootstrap (the records' stored samples,
    same rows and resamples) does not tell apart from the best row's."""
    records = [row.pop("_record", None) for row in rows]
    if not rows or records[0] is None:
        return
    for row, other in zip(rows[1:], records[1:]):
        difference = paired_auc_difference(records[0], other) if other is not None else None
        if difference is not None and difference[0] <= 0 <= difference[1]:
            row["Method"] += " ≈"


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """A table's columns: each metric column some row has a value in, in registry order."""
    metric_columns = [c for c in rows[0] if c not in ("Method", "Backbone", "evaluated", "intervals", "runs",
                                                     "undefined", *SUBSET_CELLS, *TAIL)] \
        if rows else []
    shown = [c for c in metric_columns
             if any(v is not None for row in rows for v in row[c]) or any(c in row["undefined"] for row in rows)]
    return ["Method", "Backbone", *shown, *SUBSET_CELLS, *TAIL]


def non_default_options(record: RunRecord, registry) -> list[str]:
    """``key=value`` for each recorded option that differs from its component's default under
    the record's preset (encoder options as ``encoder.key=value``). Components the registry
    lacks are not compared. Not shown: an encoder's ``history_len`` (its default follows the
    dataset), a backbone's ``path`` (the backbone's name says it) and list options without a
    default (an ensemble's ``runs``: its label names them)."""
    config = record.config
    out = []
    method = registry.components["method"].get(record.method)
    options = config.get("options")
    if method is not None and method.spec.options is not None and isinstance(options, dict):
        out += _changes(options, _method_defaults(method.spec, options), "")
    encoder, encoder_options = record.encoder, config.get("encoder_options")
    if encoder in registry.components["encoder"] and isinstance(encoder_options, dict):
        spec = registry.get("encoder", encoder)
        skip = {"history_len"} if spec.uses_history else set()
        out += _changes(encoder_options, _field_defaults(spec.options), f"{encoder}.", skip)
    backbone, backbone_options = str(record.backbone or ""), config.get("backbone_options")
    name = "hf" if backbone.startswith("hf:") else backbone
    if name in registry.components["backbone"] and isinstance(backbone_options, dict):
        spec = registry.get("backbone", name)
        if spec.options is not None:
            out += _changes(backbone_options, _field_defaults(spec.options), "backbone.", {"path"})
    return out


def _changes(values: dict[str, Any], defaults: dict[str, Any], prefix: str, skip: set[str] = frozenset()) -> list[str]:
    out = []
    for key, value in values.items():
        if key in skip or key not in defaults or defaults[key] in ([], ()) or value == defaults[key]:
            continue
        out.append(f"{prefix}{key}={shown_value(value)}")
    return out


def shown_value(value: Any) -> str:
    """An option value as boards show it: lists comma-joined, booleans lower case."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def usual_options(options: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Each option's most common shown value over ``options`` (the first seen on a tie; a
    missing option counts as None): the setting a study's runs share, against which each run's
    changes are named."""
    options = list(options)
    return {key: Counter(shown_value(o.get(key)) for o in options).most_common(1)[0][0]
            for key in dict.fromkeys(k for o in options for k in o)}


def _field_defaults(options_cls: type) -> dict[str, Any]:
    return {f.name: json_ready(f.default) for f in dataclasses.fields(options_cls)
            if f.default is not dataclasses.MISSING}


def _method_defaults(spec, options: dict[str, Any]) -> dict[str, Any]:
    """The method's options at their defaults, with the record's preset applied as the run did."""
    fields = _field_defaults(spec.options)
    preset = options.get("preset")
    try:
        instance = spec.options(**({"preset": preset} if "preset" in fields and preset not in (None, "auto") else {}))
        return options_dict(spec.resolve_options(instance) if spec.resolve_options else instance)
    except Exception:  # noqa: BLE001 - options that need a value (an ensemble's runs), or a record's
        return fields  # value the plugin's resolve_options does not know (a preset of another version)


def escape_markdown(text: Any) -> str:
    """Record text made safe for a Markdown table cell or heading: no line breaks, no column
    separators, no HTML."""
    value = " ".join(str(text).split())
    for raw, safe in (("\\", "\\\\"), ("|", "\\|"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"),
                      ("`", "\\`")):
        value = value.replace(raw, safe)
    return value


def _with_interval(row: dict[str, Any], column: str) -> str:
    """A metric cell: with one seed and a recorded interval, ``value (low-high)``."""
    if column in row.get("undefined", {}):
        return "undefined"
    bounds = (row.get("intervals") or {}).get(column.lower()) if column in ("AUC", "UAUC") else None
    return with_interval(mean_std(row[column], 4), bounds)


def _cells(row: dict[str, Any], names: list[str]) -> list[str]:
    out = [row["Method"], row["Backbone"]]
    out += [_with_interval(row, c) for c in names[2:-len(TAIL)]]
    out += [mean_std(row["Train s"], 1), mean_std(row["Infer s"], 1), seeds_cell(row["Seeds"])]
    return out


def seeds_cell(seeds: list[int]) -> str:
    """``seed 0`` for one run, ``seeds 0,1,2`` for several: a bare ``0`` read as "no seeds"."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ",".join(str(s) for s in seeds)


def render(root: Path, fmt: str = "md") -> str:
    """Leaderboards of every record below ``root``."""
    return render_records((record for _, record in iter_records(root)), fmt)


def render_records(records: Iterable[RunRecord | dict[str, Any]], fmt: str = "md", registry=None) -> str:
    records = unique_runs(records)
    tables = collect(records, registry)
    if fmt == "json":
        return json.dumps(_finite(tables), indent=2, default=_json_default, allow_nan=False)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = columns([row for rows in tables.values() for row in rows])
        writer.writerow(["Dataset", *names, "Evaluated"])
        for dataset, rows in tables.items():
            for row in rows:
                writer.writerow([dataset] + _cells(row, names) + [row["evaluated"]])
        return buf.getvalue()
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r}")
    from tabulate import tabulate

    parts = []
    for dataset, rows in tables.items():
        evaluated = sorted({row["evaluated"] for row in rows})
        parts.append(f"## {escape_markdown(dataset)}\n\nEvaluated on {escape_markdown('; '.join(evaluated))}. "
                     f"{ranking_note(rows)}{interval_note(rows)}"
                     f"{head_note(r for r in records if r.dataset == dataset)}\n")
        names = columns(rows)
        parts.append(tabulate([[escape_markdown(c) for c in _cells(r, names)] for r in rows], headers=names,
                              tablefmt="github", disable_numparse=True))
        parts.append("")
    return "\n".join(parts) if parts else "no run records found\n"


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON has none."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
