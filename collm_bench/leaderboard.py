"""Leaderboards built from run records alone: one table per dataset.

Runs that share dataset, method, encoder, backbone and evaluation rows are grouped; with
several seeds a cell shows ``mean ± std`` (sample standard deviation).
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from collm_bench.records import iter_records

COLUMNS = ("Method", "Backbone", "AUC", "UAUC", "NDCG", "Warm AUC", "Cold AUC", "Train s", "Infer s", "Seeds")
CELLS = {
    "AUC": ("overall", "auc"), "UAUC": ("overall", "uauc"), "NDCG": ("overall", "ndcg"),
    "Warm AUC": ("warm", "auc"), "Cold AUC": ("cold", "auc"),
}


def row_label(record: dict[str, Any]) -> str:
    if record.get("label"):  # set by methods whose name alone does not say the row (ensembles)
        return record["label"]
    method, encoder = record.get("method"), record.get("encoder")
    return method if not encoder or encoder == method else f"{method}-{encoder}"


def _config_key(record: dict[str, Any]) -> str:
    """A short digest of the record's configuration without its seed: runs that differ only
    by seed are one row."""
    config = {k: v for k, v in (record.get("config") or {}).items() if k != "seed"}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:6]


def _evaluated(record: dict[str, Any]) -> str:
    ev = record.get("evaluation") or {}
    if ev.get("sampled"):
        return f"sampled {ev.get('rows')} of {ev.get('total_rows')} test rows"
    return f"all {ev.get('rows')} test rows"


def collect(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows per dataset, each row aggregating the runs of one configuration over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        backbone = record.get("backbone") or ""
        if record.get("meaningless"):  # a random-weight backbone, or an ensemble with such a member
            backbone = f"{backbone} (random weights: meaningless)" if backbone else "random weights: meaningless"
        key = (record["dataset"]["name"], row_label(record), backbone, _evaluated(record), _config_key(record))
        groups[key].append(record)
    # Rows that share a name but not a configuration (another strategy, other options) are told
    # apart by their configuration key.
    names = defaultdict(set)
    for dataset, label, backbone, _, config in groups:
        names[(dataset, label, backbone)].add(config)
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (dataset, label, backbone, evaluated, config), runs in sorted(groups.items()):
        if len(names[(dataset, label, backbone)]) > 1:
            label = f"{label} [{config}]"
        row: dict[str, Any] = {"Method": label, "Backbone": backbone or "-", "evaluated": evaluated}
        for column, (subset, metric) in CELLS.items():
            row[column] = [r["metrics"].get(subset, {}).get(metric) for r in runs]
        row["Train s"] = [r["timings"].get("train_seconds") for r in runs]
        row["Infer s"] = [r["timings"].get("inference_seconds") for r in runs]
        row["Seeds"] = sorted(r.get("seed") for r in runs)
        tables[dataset].append(row)
    return dict(tables)


def _fmt(values: list, digits: int) -> str:
    present = [float(v) for v in values if v is not None]
    if not present:
        return "-"
    mean = statistics.fmean(present)
    if len(present) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(present):.{digits}f}"


def _cells(row: dict[str, Any]) -> list[str]:
    out = [row["Method"], row["Backbone"]]
    out += [_fmt(row[c], 4) for c in CELLS]
    out += [_fmt(row["Train s"], 1), _fmt(row["Infer s"], 1), ",".join(str(s) for s in row["Seeds"])]
    return out


def render(root: Path, fmt: str = "md") -> str:
    """Leaderboards of every record below ``root``."""
    return render_records((record for _, record in iter_records(root)), fmt)


def render_records(records: Iterable[dict[str, Any]], fmt: str = "md") -> str:
    tables = collect(records)
    if fmt == "json":
        return json.dumps(tables, indent=2, default=_json_default)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("Dataset",) + COLUMNS + ("Evaluated",))
        for dataset, rows in tables.items():
            for row in rows:
                writer.writerow([dataset] + _cells(row) + [row["evaluated"]])
        return buf.getvalue()
    if fmt != "md":
        raise ValueError(f"unknown format {fmt!r}")
    from tabulate import tabulate

    parts = []
    for dataset, rows in tables.items():
        evaluated = sorted({row["evaluated"] for row in rows})
        parts.append(f"## {dataset}\n\nEvaluated on {'; '.join(evaluated)}.\n")
        parts.append(tabulate([_cells(r) for r in rows], headers=COLUMNS, tablefmt="github",
                              disable_numparse=True))
        parts.append("")
    return "\n".join(parts) if parts else "no run records found\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
