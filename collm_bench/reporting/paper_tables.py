"""The paper's Tables II-VII, laid out as in the paper, from run records alone.

Each table picks its cells from the records below a runs directory: a cell is a (dataset,
row) pair, a row being a method, its encoder, its strategy and (for LLM rows) the table's
backbone; one table is drawn per backbone found. Several seeds of one configuration give
``mean ± std`` (sample standard deviation); a missing cell shows ``-``. When a cell has
several configurations (other options), the newest is shown and a note says so. Notes also
state the evaluated rows, so that sampled (partial) numbers are never mistaken for full ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from collm_bench.errors import UserError
from collm_bench.reporting.leaderboard import escape_markdown, head_note, row_digests
from collm_bench.records.store import mean_of, mean_std, with_interval
from collm_bench.records.record import RunRecord, unique_runs

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


@dataclass(frozen=True)
class Row:
    """A table row: which records fill it (``encoder``/``strategy`` None: any). ``borrow``: why
    some backbones cannot run the row; on such a backbone the table shows, marked, the row's run
    on another one."""

    name: str
    method: str
    encoder: str | None = None
    strategy: str | None = None
    group: str = ""
    borrow: str = ""
    options: tuple[tuple[str, Any], ...] = ()   # (option, value) pairs a record must have


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _strategy(record: RunRecord) -> str | None:
    return record.options.get("strategy")



def _fits(record: RunRecord, row: Row) -> bool:
    """Whether ``record`` is a run of ``row`` (any dataset, any backbone)."""
    return (record.method == row.method and (row.encoder is None or record.encoder == row.encoder)
            and (row.strategy is None or (_strategy(record) or "default") == row.strategy)
            and all(record.options.get(k) == v for k, v in row.options))


class Cells:
    """Records indexed for cell look-ups; collects the notes the chosen cells call for."""

    def __init__(self, records: Iterable[RunRecord | dict[str, Any]]) -> None:
        self.records = unique_runs(records)
        self.digests = row_digests(self.records)   # seeds of one configuration (ensembles too) share one
        self.used: list[RunRecord] = []
        self.notes: list[str] = []
        self.meaningless: set[str] = set()   # rows filled from random-weight backbones
        self.borrowed: dict[Row, dict[str, str]] = {}  # row -> {dataset: the backbone shown}
        self.intervals_shown: set[tuple] = set()  # (level, resamples) of the intervals shown

    def datasets(self, rows: Iterable[Row] = ()) -> list[str]:
        """Datasets with a record of one of ``rows``' methods (all datasets when none given)."""
        methods = {row.method for row in rows}
        return sorted({r.dataset for r in self.records if not methods or r.method in methods})

    def backbones(self, rows: Iterable[Row]) -> list[str | None]:
        """The backbones to draw a table for: those with runs of the rows' methods, not counting
        borrowing rows' runs (an ICL-only backbone is shown inside the others' tables)."""
        rows = list(rows)

        def found(rows: list[Row]) -> list[str]:
            return sorted({r.backbone for r in self.records if r.backbone and any(_fits(r, row) for row in rows)})

        return found([row for row in rows if not row.borrow]) or found(rows) or [None]

    def _matching(self, dataset: str, row: Row, backbone: str | None, extra: Any) -> list[RunRecord]:
        return [r for r in self.records if r.dataset == dataset and _fits(r, row)
                and (not r.backbone or r.backbone == backbone)
                and (extra is None or extra(r))]

    def runs(self, dataset: str, row: Row, backbone: str | None,
             extra: Any = None) -> list[RunRecord]:
        """The records of one cell: the newest configuration's runs (one per seed)."""
        found = self._matching(dataset, row, backbone, extra)
        if not found and row.borrow:
            others = sorted({r.backbone for r in self.records if r.backbone and r.backbone != backbone
                             and r.dataset == dataset and r.method == row.method})
            if others:
                self.borrowed.setdefault(row, {})[dataset] = others[0]
                found = self._matching(dataset, row, others[0], extra)
        if not found:
            return []
        groups: dict[str, list[RunRecord]] = {}
        for record in found:
            groups.setdefault(self.digests[record.run_id], []).append(record)
        chosen = max(groups.values(), key=lambda rs: max(r.date for r in rs))
        if len(groups) > 1:
            self.notes.append(f"{row.name} on {dataset}: {len(groups)} configurations found, the newest shown")
        by_seed = {}
        for record in sorted(chosen, key=lambda r: r.date):
            by_seed[record.seed] = record  # a seed run twice: the newest
        self.used += by_seed.values()
        if any(r.meaningless for r in by_seed.values()):
            self.meaningless.add(row.name)
        return list(by_seed.values())

    def metric(self, runs: list[RunRecord], metric: str) -> str:
        """A metric cell: ``mean ± std`` over seeds, or one seed's value with its recorded 95%
        bootstrap interval (AUC and UAUC), ``0.6458 (0.6301-0.6612)``."""
        cell = mean_std(metric_values(runs, metric))
        kept = runs[0].intervals if len(runs) == 1 and metric in ("auc", "uauc") else {}
        shown = with_interval(cell, kept.get(metric))
        if shown != cell:
            self.intervals_shown.add((kept.get("level"), kept.get("resamples")))
        return shown

    def footer(self) -> list[str]:
        """Evaluated rows per dataset, random-weight warnings, and the cell notes."""
        notes = []
        if self.intervals_shown:
            how = "; ".join(f"{100 * level:g}%, {resamples:,} resamples" if level and resamples else "as recorded"
                            for level, resamples in sorted(self.intervals_shown, key=str))
            notes.append(f"in brackets: the interval of a single seed's AUC / UAUC by a bootstrap over users ({how}); "
                         "a cell of several seeds shows mean ± std across seeds instead")
        for dataset in sorted({r.dataset for r in self.used}):
            evaluated = sorted({r.evaluated_rows for r in self.used if r.dataset == dataset})
            if len(evaluated) > 1:
                notes.append(f"{dataset}: cells evaluated on different rows ({'; '.join(evaluated)}): "
                             "not comparable")
            else:
                notes.append(f"{dataset}: evaluated on {evaluated[0]}")
        for row, shown in sorted(self.borrowed.items(), key=lambda item: item[0].name):
            where = "; ".join(f"{d}: {b}" for d, b in sorted(shown.items()))
            notes.append(f"† {row.name}: no run on this table's backbone ({row.borrow}); shown from another "
                         f"backbone ({where}), not comparable, no Rel. Imp.")
        if self.meaningless:
            notes.append(f"random-weight backbone, numbers meaningless: {', '.join(sorted(self.meaningless))}")
        head = head_note(self.used).strip()
        if head:
            notes.append(head)
        return notes + sorted(set(self.notes))


def metric_values(runs: list[RunRecord], metric: str, subset: str = "overall") -> list[float]:
    return [v for r in runs if (v := r.metric(metric, subset)) is not None]


def timing_values(runs: list[RunRecord], key: str) -> list[float]:
    return [float(v) for r in runs if (v := r.timing(key)) is not None]


def relative_improvement(ours: list[RunRecord], base: list[RunRecord]) -> str:
    """Table II's "Rel. Imp.": the relative improvement of CoLLM over a baseline, averaged over
    AUC and UAUC: ((A_c - A_b) / A_b + (U_c - U_b) / U_b) / 2, on the means over seeds."""
    parts = []
    for metric in ("auc", "uauc"):
        c, b = mean_of(metric_values(ours, metric)), mean_of(metric_values(base, metric))
        if c is None or not b:
            return "-"
        parts.append((c - b) / b)
    return f"{100 * sum(parts) / 2:.1f}%"


# Table II's rows. A collaborative row (and CTRL (DIN)) is compared with CoLLM on the same
# encoder; an LLMRec row with CoLLM-MF (the paper's caption).
COLLM = {enc: Row(f"CoLLM-{name}", "collm", enc, "default", "Ours")
         for enc, name in (("mf", "MF"), ("lightgcn", "LightGCN"), ("sasrec", "SASRec"), ("din", "DIN"))}
TABLE2 = [
    (Row("MF", "mf", group="Collab."), COLLM["mf"]),
    (Row("LightGCN", "lightgcn", group="Collab."), COLLM["lightgcn"]),
    (Row("SASRec", "sasrec", group="Collab."), COLLM["sasrec"]),
    (Row("DIN", "din", group="Collab."), COLLM["din"]),
    (Row("CTRL (DIN)", "ctrl", group="LM+Collab."), COLLM["din"]),
    (Row("ICL", "icl", group="LLMRec", borrow="it needs a language-model head"), COLLM["mf"]),
    (Row("Prompt4NR", "prompt4nr", group="LLMRec"), COLLM["mf"]),
    (Row("TALLRec", "tallrec", group="LLMRec"), COLLM["mf"]),
] + [(row, None) for row in COLLM.values()] + [
    # Not in the paper: the next methods of its Yes/No protocol (docs/protocol.md), against CoLLM-MF.
    (Row("BinLLM", "binllm", group="Beyond the paper"), COLLM["mf"]),
    (Row("ReLLa", "rella", group="Beyond the paper", options=(("prompt", "rella"), ("tuning", "lora"))), COLLM["mf"]),
    (Row("ReLLa (retrieval only)", "rella", group="Beyond the paper",
         options=(("prompt", "tallrec"), ("tuning", "lora"))), COLLM["mf"]),
    (Row("ReLLa zero-shot", "rella", group="Beyond the paper", options=(("prompt", "rella"), ("tuning", "zero-shot")),
         borrow="it needs a language-model head"), COLLM["mf"]),
]
MF, TALLREC = Row("MF", "mf"), Row("TALLRec", "tallrec")
REL_IMP = ("Rel. Imp.: relative improvement of CoLLM over the row, averaged over AUC and UAUC, "
           "((AUC_CoLLM - AUC_row) / AUC_row + (UAUC_CoLLM - UAUC_row) / UAUC_row) / 2, on the means over "
           "seeds; a collaborative row (and CTRL (DIN)) against CoLLM with its encoder, an LLMRec row against "
           "CoLLM-MF (the paper's Table II caption), and so a row beyond the paper (BinLLM, ReLLa: not in the "
           "paper's table)")


def _on(backbone: str | None) -> str:
    return f" (backbone {backbone})" if backbone else ""


def _grouped(rows: list[list[str]], groups: list[str]) -> list[list[str]]:
    """The group name on the first row of each group only, as the paper's merged cells."""
    out, last = [], None
    for row, group in zip(rows, groups):
        out.append([group if group != last else ""] + row)
        last = group
    return out


def table2(cells: Cells, backbone: str | None) -> Table:
    datasets = cells.datasets(row for row, _ in TABLE2)
    headers = ["", "Methods"] + [f"{d} {m}" for d in datasets for m in ("AUC", "UAUC", "NDCG", "Rel. Imp.")]
    rows, groups, missing = [], [], []
    for row, reference in TABLE2:
        line = [row.name]
        for dataset in datasets:
            runs = cells.runs(dataset, row, backbone)
            if not runs:
                missing.append(f"{row.name} ({dataset})")
            line += [cells.metric(runs, m) for m in ("auc", "uauc", "ndcg")]
            comparable = reference and dataset not in cells.borrowed.get(row, {})
            line.append(relative_improvement(cells.runs(dataset, reference, backbone), runs) if comparable else "-")
        if row in cells.borrowed:
            line[0] += " †"
        rows.append(line)
        groups.append(row.group)
    not_run = [f"no record yet, shown as -: {', '.join(missing)}"] if missing else []
    return Table(f"Table II: overall performance{_on(backbone)}", headers, _grouped(rows, groups),
                 [REL_IMP] + cells.footer() + not_run)


def _metric_table(title: str, rows: list[Row], cells: Cells, backbone: str | None) -> Table:
    datasets = cells.datasets(rows)
    headers = ["Methods"] + [f"{d} {m}" for d in datasets for m in ("AUC", "UAUC")]
    body = []
    for row in rows:
        line = [row.name]
        for dataset in datasets:
            runs = cells.runs(dataset, row, backbone)
            line += [cells.metric(runs, "auc"), cells.metric(runs, "uauc")]
        body.append(line)
    return Table(title, headers, body, cells.footer())


def table4(cells: Cells, backbone: str | None) -> Table:
    rows = [COLLM["mf"], Row("w/o CIE", "tallrec"), Row("w/ UI-token", "ui-token")]
    table = _metric_table(f"Table IV: ablation of the CIE module{_on(backbone)}", rows, cells, backbone)
    table.notes.insert(0, "w/o CIE is TALLRec; w/ UI-token replaces the CIE by per-user and per-item tokens")
    return table


def table5(cells: Cells, backbone: str | None) -> Table:
    rows = [Row(name, "collm", "mf", strategy) for name, strategy in
            (("Default", "default"), ("T1", "t1"), ("T2", "t2"), ("T3", "t3"))]
    table = _metric_table(f"Table V: CoLLM-MF with different tuning strategies{_on(backbone)}", rows, cells, backbone)
    table.notes.insert(0, "T1: step 2 also tunes the pretrained encoder; T2: step 2 tunes CIE and encoder "
                          "from scratch; T3: one step, LoRA and CIE together")
    return table


def table7(cells: Cells, backbone: str | None) -> Table:
    return _metric_table(f"Table VII: performance on another backbone{_on(backbone)}",
                         [MF, TALLREC, COLLM["mf"]], cells, backbone)


def _members(record: RunRecord) -> tuple[str, ...]:
    return tuple(sorted(m.get("label", "") for m in record.training.get("members", [])))


def table3(cells: Cells, backbone: str | None) -> Table:
    single = [MF, TALLREC, COLLM["mf"]]
    ensembles = [("MF+TALLRec", ("mf", "tallrec")), ("MF+CoLLM-MF", ("collm-mf", "mf"))]
    headers = ["Dataset"] + [f"Single: {r.name}" for r in single] + [f"Ensemble: {n}" for n, _ in ensembles]
    body, normalize = [], set()
    for dataset in cells.datasets(single + [Row("", "ensemble")]):
        line = [dataset] + [cells.metric(cells.runs(dataset, row, backbone), "auc") for row in single]
        for name, members in ensembles:
            def wanted(r, members=members):
                backbones = {m.get("backbone") for m in r.training.get("members", [])} - {None}
                return _members(r) == members and backbones <= {backbone}
            runs = cells.runs(dataset, Row(name, "ensemble"), backbone, extra=wanted)
            normalize |= {r.training.get("normalize") for r in runs}
            line.append(cells.metric(runs, "auc"))
        body.append(line)
    how = ", ".join(sorted(n for n in normalize if n)) or "-"
    return Table(f"Table III: ensembles, AUC{_on(backbone)}", headers, body,
                 [f"Ensemble: the average of the two runs' saved scores (normalize: {how})"] + cells.footer())


def table6(cells: Cells, backbone: str | None) -> Table:
    rows = [TALLREC, COLLM["mf"]]
    datasets = cells.datasets(rows)
    headers = ["Methods"] + [f"Train time {d}" for d in datasets] + [f"Inference time {d}" for d in datasets]
    values = {(row.name, d): cells.runs(d, row, backbone) for row in rows for d in datasets}
    body = []
    for row in rows:
        body.append([row.name] + [mean_std(timing_values(values[row.name, d], "train_seconds"), 1, 1 / 60, "min")
                                  for d in datasets]
                    + [mean_std(timing_values(values[row.name, d], "inference_seconds"), 1, 1.0, "s") for d in datasets])
    delta = ["Δ"]
    for key in ("train_seconds", "inference_seconds"):
        for d in datasets:
            t, c = (mean_of(timing_values(values[r.name, d], key)) for r in rows)
            delta.append(f"{100 * (c - t) / t:.0f}%" if t and c is not None else "-")
    devices = sorted({r.device for r in cells.used})
    notes = ["Δ: the relative extra cost of CoLLM-MF over TALLRec; CoLLM-MF's train time counts its encoder "
             "pretraining, step 1 and step 2; inference time is scoring the evaluated rows",
             f"measured on: {'; '.join(devices) or '-'}"
             + (" (timings on different devices are not comparable)" if len(devices) > 1 else "")]
    return Table(f"Table VI: training and inference time, TALLRec vs CoLLM-MF{_on(backbone)}", headers,
                 body + [delta], notes + cells.footer())


TABLES = {2: (table2, [r for r, _ in TABLE2]), 3: (table3, [TALLREC, COLLM["mf"]]),
          4: (table4, [COLLM["mf"], TALLREC, Row("w/ UI-token", "ui-token")]), 5: (table5, [COLLM["mf"]]),
          6: (table6, [TALLREC, COLLM["mf"]]), 7: (table7, [TALLREC, COLLM["mf"]])}


def build_tables(number: int, records: Iterable[RunRecord | dict[str, Any]], backbone: str | None = None) -> list[Table]:
    """Table ``number`` (2..7) of the paper, one per backbone found (or the one asked for)."""
    if number not in TABLES:
        raise UserError(f"--table must be one of 2..7 (the paper's Tables II-VII), got {number}")
    build, rows = TABLES[number]
    records = list(records)
    backbones = [backbone] if backbone else Cells(records).backbones(rows)
    return [build(Cells(records), b) for b in backbones]


def render_tables(number: int, records: Iterable[RunRecord | dict[str, Any]], fmt: str = "md",
                  backbone: str | None = None) -> str:
    tables = build_tables(number, records, backbone)
    if fmt == "json":
        return json.dumps([t.__dict__ for t in tables], indent=2) + "\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for table in tables:
            writer.writerow(["Table"] + table.headers)
            writer.writerows([table.title] + row for row in table.rows)
        return buf.getvalue()
    if fmt != "md":
        raise UserError(f"--format must be md, csv or json, got {fmt!r}")
    from tabulate import tabulate

    parts = []
    for table in tables:  # record text (dataset and backbone names) escaped like the leaderboard's
        rows = [[escape_markdown(c) for c in row] for row in table.rows]
        parts += [f"### {escape_markdown(table.title)}", "",
                  tabulate(rows, headers=[escape_markdown(h) for h in table.headers], tablefmt="github",
                           disable_numparse=True), ""]
        parts += [f"- {escape_markdown(note)}" for note in table.notes] + [""]
    return "\n".join(parts)
