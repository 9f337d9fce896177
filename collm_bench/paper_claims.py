"""The paper's Table II and Figure 3 observations, checked one by one against run records.

Each claim is a chain of comparisons ("TALLRec < MF < CoLLM-MF on warm rows, AUC"), read on the
cells the paper tables show (``paper_tables.Cells``: the newest configuration, mean over seeds).
A claim holds when every comparison in it holds on those values; a comparison whose gap is
smaller than its cells' noise is marked ``~`` (within noise): the noise of a one-seed cell is
half the width of its recorded 95% user-bootstrap interval, of a several-seed cell the standard
deviation across seeds (both AUC / UAUC only; a cell with neither counts as noiseless). A claim
whose rows are missing says so instead of a verdict.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable

from collm_bench.paper_tables import COLLM, TABLE2, Cells, Row, metric_values
from collm_bench.run_record import RunRecord

BASE = {row.name: row for row, _ in TABLE2}
MF, LIGHTGCN, SASREC, DIN = (BASE[n] for n in ("MF", "LightGCN", "SASRec", "DIN"))
CTRL, ICL, PROMPT4NR, TALLREC = (BASE[n] for n in ("CTRL (DIN)", "ICL", "Prompt4NR", "TALLRec"))
BASELINES = [MF, LIGHTGCN, SASREC, DIN, CTRL, ICL, PROMPT4NR, TALLREC]
ENCODER_ROWS = {"mf": MF, "lightgcn": LIGHTGCN, "sasrec": SASREC, "din": DIN}


@dataclass
class Value:
    name: str
    value: float
    noise: float

    def __str__(self) -> str:
        return f"{self.name} {self.value:.4f}"


@dataclass
class Verdict:
    claim: str
    evidence: str       # the compared values, "TALLRec 0.5377 < MF 0.6490 ..."
    holds: bool | None  # None: rows missing

    @property
    def word(self) -> str:
        return {True: "holds", False: "does not hold", None: "not measured"}[self.holds]


class _Reader:
    def __init__(self, cells: Cells, dataset: str, backbone: str | None) -> None:
        self.cells, self.dataset, self.backbone = cells, dataset, backbone

    def value(self, row: Row, metric: str = "auc", subset: str = "overall") -> Value | None:
        runs = self.cells.runs(self.dataset, row, self.backbone)
        values = metric_values(runs, metric, subset)
        if not values:
            return None
        name = row.name + (" (random weights)" if any(r.meaningless for r in runs) else "")
        return Value(name, statistics.fmean(values), _noise(runs, values, metric, subset))


def _noise(runs: list[RunRecord], values: list[float], metric: str, subset: str) -> float:
    if len(values) > 1:
        return statistics.stdev(values)
    bounds = runs[0].intervals.get(metric) if subset == "overall" and metric in ("auc", "uauc") else None
    return (bounds[1] - bounds[0]) / 2 if bounds else 0.0


def _chain(claim: str, values: list[Value | None], what: str = "") -> Verdict:
    """``values[0] < values[1] < ...``; ``what`` (the metric) leads the evidence."""
    lead = f"{what}: " if what else ""
    if any(v is None for v in values):
        return Verdict(claim, f"{lead}rows missing", None)
    parts, holds = [str(values[0])], True
    for low, high in zip(values, values[1:]):
        ok = low.value < high.value
        holds &= ok
        close = abs(high.value - low.value) < max(low.noise, high.noise)
        parts.append(("<" if ok else ">=") + ("~" if close else "") + f" {high}")
    return Verdict(claim, lead + " ".join(parts), holds)


def _all(claim: str, verdicts: list[Verdict], what: str) -> Verdict:
    """Every one of ``verdicts`` (each a chain without ``what``) holds."""
    measured = [v for v in verdicts if v.holds is not None]
    holds = all(v.holds for v in measured) if measured else None
    return Verdict(claim, f"{what}: " + "; ".join(v.evidence for v in verdicts), holds)


def check_claims(records: Iterable[RunRecord], dataset: str, backbone: str | None) -> list[Verdict]:
    """The verdict of every Table II and Figure 3 observation on ``dataset`` with ``backbone``."""
    read = _Reader(Cells(records), dataset, backbone)
    out = []
    for metric in ("auc", "uauc"):
        collm = [v for v in (read.value(row, metric) for row in COLLM.values()) if v]
        base = [v for v in (read.value(row, metric) for row in BASELINES) if v]
        best_collm = max(collm, key=lambda v: v.value, default=None)
        best_base = max(base, key=lambda v: v.value, default=None)
        out.append(_chain(f"The best CoLLM beats every baseline ({metric.upper()})", [best_base, best_collm],
                          f"best baseline vs best CoLLM, {metric.upper()}"))
    out.append(_all("TALLRec beats MF, LightGCN and SASRec (AUC)",
                    [_chain("", [read.value(row), read.value(TALLREC)]) for row in (MF, LIGHTGCN, SASREC)], "AUC"))
    out.append(_chain("DIN beats TALLRec (AUC)", [read.value(TALLREC), read.value(DIN)], "AUC"))
    out.append(_all("Every CoLLM-X beats X (AUC)",
                    [_chain("", [read.value(ENCODER_ROWS[enc]), read.value(row)]) for enc, row in COLLM.items()], "AUC"))
    out.append(_all("Every CoLLM-X beats X (UAUC)",
                    [_chain("", [read.value(ENCODER_ROWS[enc], "uauc"), read.value(row, "uauc")])
                     for enc, row in COLLM.items()], "UAUC"))
    out.append(_all("ICL is the weakest LLMRec method (AUC)",
                    [_chain("", [read.value(ICL), read.value(row)]) for row in (PROMPT4NR, TALLREC, COLLM["mf"])], "AUC"))
    out.append(_chain("Prompt4NR < TALLRec < CoLLM-MF (AUC)",
                      [read.value(PROMPT4NR), read.value(TALLREC), read.value(COLLM["mf"])], "AUC"))
    out.append(_chain("Warm rows: TALLRec < MF < CoLLM-MF (AUC; Figure 3)",
                      [read.value(TALLREC, "auc", "warm"), read.value(MF, "auc", "warm"),
                       read.value(COLLM["mf"], "auc", "warm")], "warm AUC"))
    out.append(_chain("Warm rows: MF < TALLRec < CoLLM-MF (UAUC; Figure 3)",
                      [read.value(MF, "uauc", "warm"), read.value(TALLREC, "uauc", "warm"),
                       read.value(COLLM["mf"], "uauc", "warm")], "warm UAUC"))
    out.append(_all("Cold rows: TALLRec and CoLLM-MF beat MF (AUC; Figure 3)",
                    [_chain("", [read.value(MF, "auc", "cold"), read.value(row, "auc", "cold")])
                     for row in (TALLREC, COLLM["mf"])], "cold AUC"))
    out.append(_chain("Cold rows: CoLLM-MF at least level with TALLRec (AUC; Figure 3)",
                      [read.value(TALLREC, "auc", "cold"), read.value(COLLM["mf"], "auc", "cold")], "cold AUC"))
    return out


def render_claims(verdicts: list[Verdict], title: str) -> str:
    lines = [f"### {title}", "", "| claim | verdict | values |", "|---|---|---|"]
    lines += [f"| {v.claim} | {v.word} | {v.evidence} |" for v in verdicts]
    return "\n".join(lines) + "\n"
