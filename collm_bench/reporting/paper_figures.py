"""The paper's Figures 3 and 4 (warm / cold bars) as PNG, from run records alone.

Figure 3: MF, TALLRec and CoLLM-MF on the warm and the cold test subsets (AUC and UAUC);
Figure 4: CoLLM-MF's tuning strategies (default, T1, T2, T3) on the same subsets. One row of
panels per dataset, warm on the left and cold on the right, as in the paper; error bars are
the standard deviation over seeds. matplotlib is imported here only (it costs ~0.5 s).
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Iterable

from collm_bench.errors import UserError
from collm_bench.records.record import RunRecord
from collm_bench.reporting.paper_tables import COLLM, MF, TALLREC, Cells, Row, metric_values

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

FIGURES = {
    3: ("Figure 3: warm and cold performance", [MF, TALLREC, COLLM["mf"]]),
    4: ("Figure 4: CoLLM-MF's tuning strategies, warm and cold",
        [Row(name, "collm", "mf", strategy) for name, strategy in
         (("Default", "default"), ("T1", "t1"), ("T2", "t2"), ("T3", "t3"))]),
}
METRICS = (("AUC", "auc"), ("UAUC", "uauc"))
STRATEGIES = ("Default: step 1 (LoRA on text) then step 2 (CIE on ID prompts, LoRA frozen); T1: step 2 also "
              "tunes the encoder; T2: step 2 tunes CIE and a freshly initialised encoder; T3: one step tunes "
              "LoRA and CIE together")


def figure_data(number: int, records: Iterable[RunRecord | dict[str, Any]], backbone: str | None = None
                ) -> tuple[str, dict[tuple[str, str, str, str], list[float]], Cells, str | None]:
    """Values per (dataset, subset, row name, metric), the figure's title, its cells (for notes)
    and the backbone drawn."""
    if number not in FIGURES:
        raise UserError(f"--figure must be 3 or 4 (the paper's Figures 3-4), got {number}")
    title, rows = FIGURES[number]
    cells = Cells(records)
    if backbone is None:
        found = [b for b in cells.backbones(rows) if b]
        if len(found) > 1:
            raise UserError(f"records hold several backbones ({', '.join(found)}): pick one with --backbone")
        backbone = found[0] if found else None
    values = {}
    for dataset in cells.datasets(rows):
        for row in rows:
            runs = cells.runs(dataset, row, backbone)
            for subset in ("warm", "cold"):
                for label, metric in METRICS:
                    values[dataset, subset, row.name, label] = metric_values(runs, metric, subset)
    if not any(values.values()):
        raise UserError(f"no records for Figure {number} (rows: {', '.join(r.name for r in rows)})")
    return title, values, cells, backbone


def write_figure(number: int, records: Iterable[RunRecord | dict[str, Any]], output: str | Path,
                 backbone: str | None = None) -> Path:
    """Draw Figure ``number`` (3 or 4) into the PNG file ``output``."""
    title, values, cells, backbone = figure_data(number, records, backbone)
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    datasets = [d for d in cells.datasets() if any(v for k, v in values.items() if k[0] == d)]
    names = [r.name for r in FIGURES[number][1]]
    present = [statistics.fmean(v) for v in values.values() if v]
    low, high = max(0.0, min(present) - 0.05), min(1.0, max(present) + 0.05)
    fig, axes = plt.subplots(len(datasets), 2, figsize=(9, 3.2 * len(datasets)), squeeze=False)
    width = 0.8 / len(names)
    for i, dataset in enumerate(datasets):
        for j, subset in enumerate(("warm", "cold")):
            ax = axes[i][j]
            for k, name in enumerate(names):
                got = [values[dataset, subset, name, label] for label, _ in METRICS]
                nan = float("nan")  # a missing cell draws no bar; one seed draws no error bar
                heights = [statistics.fmean(v) if v else nan for v in got]
                errors = [statistics.stdev(v) if len(v) > 1 else nan for v in got]
                xs = [m + (k - (len(names) - 1) / 2) * width for m in range(len(METRICS))]
                ax.bar(xs, heights, width, yerr=errors, label=name, capsize=3)
            ax.set_xticks(range(len(METRICS)), [label for label, _ in METRICS])
            ax.set_xlim(-0.5, len(METRICS) - 0.5)
            ax.set_ylim(low, high)
            ax.set_title(f"{dataset}, {subset}")
            ax.set_ylabel("test value (0-1)" if j == 0 else "")
            ax.grid(axis="y", alpha=0.3)
    notes = cells.footer()
    seeds = {len(v) for v in values.values() if v}
    notes.insert(0, (f"y axes start at {low:.2f}, not 0, so that differences show. " if low > 0 else "")
                 + ("Error bars: standard deviation over seeds; bars without one are a single seed's run."
                    if max(seeds) > 1 else "No error bars: every bar is a single seed's run."))
    if number == 4:
        notes.insert(1, STRATEGIES)
    fig.suptitle(title + f" ({', '.join(datasets)}" + (f", backbone {backbone})" if backbone else ")"))
    top = 1 - 0.16 / len(datasets)   # room for the title and, under it, one legend for all panels
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncol=len(names), fontsize="small",
               frameon=False, bbox_to_anchor=(0.5, top + 0.06 / len(datasets)))
    fig.text(0.01, 0.005, "\n".join(notes), fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.012 * len(notes), 1, top))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    drawn = {f"{d}/{sub}/{name}/{label}": round(statistics.fmean(v), 6)
             for (d, sub, name, label), v in values.items() if v and d in datasets}
    # what was drawn, in the PNG itself: a reader (or a test) can check it against the records
    fig.savefig(output, format="png", dpi=120, metadata={"Description": json.dumps(drawn, sort_keys=True)})
    plt.close(fig)
    return output
