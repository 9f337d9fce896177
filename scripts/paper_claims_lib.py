"""The paper's Table II and Figure 3 observations, checked one by one against run records.

Each claim is a set of comparisons ("TALLRec < MF < CoLLM-MF on warm rows, AUC"), read on the
cells the paper tables show (``paper_tables.Cells``: the newest configuration, mean over seeds).
A claim holds when every comparison in it holds on those values. Each comparison is marked by
how far its gap is from its cells' noise, a rough guide and not a test: ``~`` when the gap is
smaller than the larger noise of its two cells, ``?`` when a cell has no noise recorded. The
noise of a one-seed cell is half the width of its recorded 95% user-bootstrap interval (overall
AUC / UAUC only: warm and cold cells have none), of a several-seed cell the standard deviation
across seeds. A claim some of whose rows are missing says "holds on the rows present" at most;
one with no rows is "not measured". A verdict is *narrow* when it rests on gaps inside the noise:
a claim that holds with some comparison marked ``~``, or fails only on comparisons marked ``~``.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable

from collm_bench.reporting.paper_tables import COLLM, TABLE2, Cells, Row, metric_values
from collm_bench.records.store import mean_of
from collm_bench.records.record import RunRecord

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

BASE = {row.name: row for row, _ in TABLE2}
MF, LIGHTGCN, SASREC, DIN = (BASE[n] for n in ("MF", "LightGCN", "SASRec", "DIN"))
CTRL, ICL, PROMPT4NR, TALLREC = (BASE[n] for n in ("CTRL (DIN)", "ICL", "Prompt4NR", "TALLRec"))
BASELINES = [MF, LIGHTGCN, SASREC, DIN, CTRL, ICL, PROMPT4NR, TALLREC]
ENCODER_ROWS = {"mf": MF, "lightgcn": LIGHTGCN, "sasrec": SASREC, "din": DIN}


@dataclass
class Value:
    name: str
    value: float
    noise: float | None  # None: not recorded

    def __str__(self) -> str:
        return f"{self.name} {self.value:.4f}"


@dataclass
class Verdict:
    claim: str
    evidence: str       # the compared values, "TALLRec 0.5377 < MF 0.6490 ..."
    holds: bool | None  # None: no rows
    partial: bool = False  # some rows missing
    narrow: bool = False   # would flip if the comparisons within their noise (~) went the other way

    @property
    def word(self) -> str:
        if self.holds is None:
            return "not measured"
        if self.partial:
            return "holds on the rows present" if self.holds else "does not hold"
        return "holds" if self.holds else "does not hold"


class _Reader:
    def __init__(self, cells: Cells, dataset: str, backbone: str | None) -> None:
        self.cells, self.dataset, self.backbone = cells, dataset, backbone

    def value(self, row: Row, metric: str = "auc", subset: str = "overall") -> Value | None:
        runs = self.cells.runs(self.dataset, row, self.backbone)
        values = metric_values(runs, metric, subset)
        if not values:
            return None
        name = row.name + (" (random weights)" if any(r.meaningless for r in runs) else "")
        return Value(name, mean_of(values), _noise(runs, values, metric, subset))


def _noise(runs: list[RunRecord], values: list[float], metric: str, subset: str) -> float | None:
    if len(values) > 1:
        return statistics.stdev(values)
    bounds = runs[0].intervals.get(metric) if subset == "overall" and metric in ("auc", "uauc") else None
    return (bounds[1] - bounds[0]) / 2 if bounds else None


def _mark(low: Value, high: Value) -> str:
    if low.noise is None or high.noise is None:
        return "?"
    return "~" if abs(high.value - low.value) < max(low.noise, high.noise) else ""


def _chain(values: list[Value | None], what: str) -> Verdict:
    """``values[0] < values[1] < ...`` on metric ``what``."""
    if any(v is None for v in values):
        return Verdict("", f"{what}: rows missing", None)
    parts, results = [str(values[0])], []
    for low, high in zip(values, values[1:]):
        ok, mark = low.value < high.value, _mark(low, high)
        results.append((ok, mark == "~"))
        parts.append(("<" if ok else ">=") + mark + f" {high}")
    return Verdict("", f"{what}: " + " ".join(parts), all(ok for ok, _ in results), narrow=_narrow(results))


def _narrow(results: list[tuple[bool, bool]]) -> bool:
    """From (holds, within noise) pairs: a pass with one close call, or a failure made of close calls only."""
    if all(ok for ok, _ in results):
        return any(close for _, close in results)
    return all(close for ok, close in results if not ok)


def _claim(claim: str, verdicts: list[Verdict]) -> Verdict:
    """Every comparison of ``verdicts`` holds."""
    measured = [v for v in verdicts if v.holds is not None]
    holds = all(v.holds for v in measured) if measured else None
    return Verdict(claim, "; ".join(v.evidence for v in verdicts), holds, partial=len(measured) < len(verdicts),
                   narrow=bool(measured) and _narrow([(bool(v.holds), v.narrow) for v in measured]))


def _best_collm(read: _Reader) -> Verdict:
    """One CoLLM version beats every baseline in both AUC and UAUC (the paper's first observation).
    Narrow when no winner beats both best baselines by more than the noise, or when a version
    fails only by gaps inside it."""
    claim = "A CoLLM version beats every baseline in AUC and UAUC"
    best, missing = {}, []
    for metric in ("auc", "uauc"):
        values = [read.value(row, metric) for row in BASELINES]
        missing += [row.name for row, v in zip(BASELINES, values) if v is None and row.name not in missing]
        best[metric] = max((v for v in values if v), key=lambda v: v.value, default=None)
    versions = {row.name: (read.value(row, "auc"), read.value(row, "uauc")) for row in COLLM.values()}
    versions = {name: pair for name, pair in versions.items() if None not in pair}
    if not versions or None in best.values():
        return Verdict(claim, "rows missing", None)
    results = {name: [(v.value > best[m].value, _mark(best[m], v) == "~") for m, v in zip(("auc", "uauc"), pair)]
               for name, pair in versions.items()}
    winners = [name for name, pairs in results.items() if all(ok for ok, _ in pairs)]
    narrow = (all(_narrow(results[name]) for name in winners) if winners
              else any(_narrow(pairs) for pairs in results.values()))
    top = max(versions.items(), key=lambda item: item[1][0].value)
    evidence = (f"best baselines: AUC {best['auc']}, UAUC {best['uauc']}; "
                + (f"beaten in both by {', '.join(winners)}" if winners
                   else f"no version beats both (best CoLLM AUC: {top[0]} {top[1][0].value:.4f} / "
                        f"UAUC {top[1][1].value:.4f})")
                + (f"; missing: {', '.join(missing)}" if missing else ""))
    return Verdict(claim, evidence, bool(winners), partial=bool(missing) or len(versions) < len(COLLM),
                   narrow=narrow)


def step1_rows(record: RunRecord) -> int | None:
    """The rows step 1 (TALLRec's LoRA tuning, which CoLLM starts from) trained on: steps run x batch
    size; None for a record without a step 1."""
    step1, batch = record.training.get("llm-step1"), int(record.options.get("batch_size") or 0)
    if not isinstance(step1, dict) or "steps_run" not in step1 or batch <= 0:
        return None
    return int(step1["steps_run"]) * batch


def check_claims(records: Iterable[RunRecord], dataset: str, backbone: str | None) -> list[Verdict]:
    """The verdict of every Table II and Figure 3 observation on ``dataset`` with ``backbone``."""
    read = _Reader(Cells(records), dataset, backbone)
    collm_mf = COLLM["mf"]

    def both(rows: list[Row], subset: str = "overall", prefix: str = "") -> list[Verdict]:
        return [_chain([read.value(r, m, subset) for r in rows], f"{prefix}{m.upper()}") for m in ("auc", "uauc")]

    return [
        _best_collm(read),
        _claim("TALLRec beats MF, LightGCN and SASRec (AUC)",
               [_chain([read.value(row), read.value(TALLREC)], "AUC") for row in (MF, LIGHTGCN, SASREC)]),
        _claim("DIN beats TALLRec (AUC)", [_chain([read.value(TALLREC), read.value(DIN)], "AUC")]),
        _claim("Every CoLLM-X beats X (AUC, UAUC)",
               [v for enc, row in COLLM.items() for v in both([ENCODER_ROWS[enc], row])]),
        _claim("Every CoLLM-X beats TALLRec (AUC)", [_chain([read.value(TALLREC), read.value(row)], "AUC")
                                                      for row in COLLM.values()]),
        _claim("ICL is the weakest LLMRec method (AUC, UAUC)",
               [v for row in (PROMPT4NR, TALLREC, collm_mf) for v in both([ICL, row])]),
        _claim("Prompt4NR < TALLRec < CoLLM-MF (AUC, UAUC)", both([PROMPT4NR, TALLREC, collm_mf])),
        _claim("Warm rows: TALLRec < MF < CoLLM-MF (AUC; Figure 3)",
               [_chain([read.value(r, "auc", "warm") for r in (TALLREC, MF, collm_mf)], "warm AUC")]),
        _claim("Warm rows: MF < TALLRec < CoLLM-MF (UAUC; Figure 3)",
               [_chain([read.value(r, "uauc", "warm") for r in (MF, TALLREC, collm_mf)], "warm UAUC")]),
        _claim("Cold rows: TALLRec and CoLLM-MF beat MF (AUC, UAUC; Figure 3)",
               both([MF, TALLREC], "cold", "cold ") + both([MF, collm_mf], "cold", "cold ")),
        _claim("Cold rows: CoLLM-MF beats TALLRec in AUC (Figure 3; the paper: slightly below in UAUC)",
               [_chain([read.value(r, "auc", "cold") for r in (TALLREC, collm_mf)], "cold AUC")]),
    ]


def render_claims(verdicts: list[Verdict], title: str) -> str:
    lines = [f"### {title}", "", "| claim | verdict | values |", "|---|---|---|"]
    lines += [f"| {v.claim} | {v.word} | {v.evidence} |" for v in verdicts]
    return "\n".join(lines) + "\n"


def overview_cell(verdict: Verdict) -> str:
    """A verdict in a few characters, for the page's overview: ``holds``, ``no``, ``holds*`` (on the
    rows present), ``-`` (not measured), each with ``~`` when narrow."""
    if verdict.holds is None:
        return "-"
    word = ("holds*" if verdict.partial else "holds") if verdict.holds else "no"
    return word + (" ~" if verdict.narrow else "")


def render_overview(columns: list[tuple[str, list[Verdict]]]) -> str:
    """One row per claim, one column per (title, verdicts) section, in the order given."""
    claims = [v.claim for v in columns[0][1]]
    lines = ["| claim | " + " | ".join(title for title, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for i, claim in enumerate(claims):
        lines.append(f"| {claim} | " + " | ".join(overview_cell(verdicts[i]) for _, verdicts in columns) + " |")
    return "\n".join(lines) + "\n"
