"""The budget study's page and figure (issue 9): test AUC of TALLRec and CoLLM rows against the
rows step 1 trained on (steps run x batch size), each point with its wall time, and at each budget
whether one row beats another by a paired bootstrap over users, from the records of
``leaderboards/budget-*.toml`` alone. Records without a step 1 (the MF a CoLLM-MF run writes) are
the references the LLM rows are held against.

    python scripts/budget_study.py leaderboards/runs/budget-ml-1m --output leaderboards/budget-ml-1m.md

The figure of each records folder is written beside the page as ``<folder name>.png``.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from tabulate import tabulate

from collm_bench.bootstrap import paired_from_samples
from collm_bench.records import iter_records
from collm_bench.run_record import RunRecord

HEADER = """# Budget study: how much step-1 training the LLM rows need

Written by `scripts/budget_study.py` from the committed records alone. Step-1 rows are the rows
step 1 (TALLRec's LoRA tuning on text prompts, shared by CoLLM) actually trained on: steps run x
batch size. Each point is one seed; the test AUC is on the whole test split with its 95% interval
from a bootstrap over users. Train minutes sum the record's training stages (encoder, step 1,
step 2) as they were measured, cached stages included, on the machine named in each record, often
beside other jobs: compare them within a study, not across machines. At each budget, a row is
`higher` or `lower` than another when the 95% interval of their AUC difference, by a paired
bootstrap over users on the same test rows, excludes 0, and `level` when it does not.
"""


class Point(NamedTuple):
    """One LLM record of the study."""
    name: str
    rows: int           # step-1 training rows
    best_step: int
    valid_auc: float
    step2_rows: int     # 0: no step 2
    minutes: float
    record: RunRecord


def _step1(record: RunRecord) -> dict | None:
    stage = record.training.get("llm-step1")
    return stage if isinstance(stage, dict) and "steps_run" in stage else None


def points(records: list[RunRecord]) -> dict[str, list[Point]]:
    """Row name -> its points, by step-1 rows (records without a step 1 are left out)."""
    out: dict[str, list[Point]] = defaultdict(list)
    for record in records:
        step1 = _step1(record)
        if step1 is None or record.metric("auc") is None:
            continue
        batch = int(record.options.get("batch_size") or 0)
        step2 = record.training.get("llm-step2")
        step2_rows = int(step2.get("steps_run", 0)) * batch if isinstance(step2, dict) else 0
        out[record.row_label].append(Point(record.row_label, int(step1["steps_run"]) * batch,
                                           int(step1.get("best_step", 0)), float(step1.get("best_valid_auc", 0)),
                                           step2_rows, float(record.timing("train_seconds") or 0) / 60, record))
    return {name: sorted(values, key=lambda p: p.rows) for name, values in sorted(out.items())}


def references(records: list[RunRecord]) -> list[RunRecord]:
    """The records without a step 1 (collaborative rows), one per row name (the lowest seed)."""
    best: dict[str, RunRecord] = {}
    for record in sorted(records, key=lambda r: r.seed):
        if _step1(record) is None and record.metric("auc") is not None:
            best.setdefault(record.row_label, record)
    return [best[name] for name in sorted(best)]


def _auc_cell(record: RunRecord, metric: str = "auc") -> str:
    value, bounds = record.metric(metric), record.intervals.get(metric)
    if value is None:
        return "-"
    return f"{value:.4f}" + (f" ({bounds[0]:.4f}-{bounds[1]:.4f})" if bounds else "")


def compare(a: RunRecord, b: RunRecord) -> str:
    """``a`` against ``b`` on AUC: the difference and its paired 95% interval, and the verdict."""
    diff = a.metric("auc") - b.metric("auc")
    ia, ib = a.intervals, b.intervals
    same = (a.evaluation.get("rows") == b.evaluation.get("rows")
            and (ia.get("seed"), ia.get("resamples")) == (ib.get("seed"), ib.get("resamples")))
    bounds = paired_from_samples((ia.get("samples") or {}).get("auc"), (ib.get("samples") or {}).get("auc")) \
        if same else None
    if bounds is None:
        return f"{diff:+.4f} (not paired)"
    word = "higher" if bounds[0] > 0 else "lower" if bounds[1] < 0 else "level"
    return f"{diff:+.4f} ({bounds[0]:+.4f} to {bounds[1]:+.4f}): {word}"


def section(runs: Path) -> str:
    records = [record for _, record in iter_records(runs)]
    data, refs = points(records), references(records)
    if not data:
        return f"## {runs.name}\n\nNo LLM records yet.\n"
    datasets = sorted({r.dataset for r in records})
    backbones = sorted({p.record.backbone or "?" for values in data.values() for p in values})
    test_rows = sorted({int(r.evaluation.get("rows") or 0) for r in records})
    lines = [[p.name, f"{p.rows:,}", str(p.best_step), f"{p.valid_auc:.4f}", f"{p.step2_rows:,}" if p.step2_rows else "-",
              f"{p.minutes:.1f}", _auc_cell(p.record), _auc_cell(p.record, "uauc")]
             for values in data.values() for p in values]
    lines += [[f"{r.row_label} (reference, seed {r.seed})", "-", "-", "-", "-",
               f"{float(r.timing('train_seconds') or 0) / 60:.1f}", _auc_cell(r), _auc_cell(r, "uauc")] for r in refs]
    table = tabulate(lines, headers=("row", "step-1 rows", "best at step", "step-1 valid AUC", "step-2 rows",
                                     "train min", "test AUC (95%)", "test UAUC (95%)"),
                     tablefmt="github", disable_numparse=True)
    # at each budget: every LLM row against TALLRec and against each reference
    budgets = sorted({p.rows for values in data.values() for p in values})
    at = {(p.name, p.rows): p.record for values in data.values() for p in values}
    pairs = [(name, "tallrec") for name in data if name != "tallrec" and "tallrec" in data]
    pairs += [(name, ref.row_label) for name in data for ref in refs]
    by_name = {r.row_label: r for r in refs}
    order = [[f"{rows:,}"] + [compare(at[(a, rows)], at.get((b, rows)) or by_name[b])
                              if (a, rows) in at and ((b, rows) in at or b in by_name) else "-" for a, b in pairs]
             for rows in budgets]
    verdicts = tabulate(order, headers=["step-1 rows"] + [f"{a} - {b}" for a, b in pairs], tablefmt="github",
                        disable_numparse=True)
    return (f"## {runs.name}: {', '.join(datasets)}, {', '.join(backbones)}, "
            f"{', '.join(f'{n:,}' for n in test_rows if n)} test rows\n\n"
            f"![Test AUC against step-1 training rows: {runs.name}]({runs.name}.png)\n\n{table}\n\n"
            f"Test AUC differences at each budget (paired bootstrap over users, 95%):\n\n{verdicts}\n")


def render(folders: list[Path]) -> str:
    """The Markdown page: the header, then one section per records folder."""
    return HEADER + "".join("\n" + section(runs) for runs in folders)


def figure(runs: Path, output: Path) -> None:
    """Test AUC (with its interval) against step-1 rows, one line per LLM row, each reference a
    horizontal band, each point labelled with its train minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [record for _, record in iter_records(runs)]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in points(records).items():
        xs, ys = [p.rows for p in values], [p.record.metric("auc") for p in values]
        bounds = [p.record.intervals.get("auc") or (y, y) for p, y in zip(values, ys)]
        err = [[y - b[0] for y, b in zip(ys, bounds)], [b[1] - y for y, b in zip(ys, bounds)]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=name)
        for p, y in zip(values, ys):
            ax.annotate(f"{p.minutes:.0f} min", (p.rows, y), textcoords="offset points", xytext=(5, -10), fontsize=7)
    for ref in references(records):
        line = ax.axhline(ref.metric("auc"), linestyle="--", linewidth=1, color="grey")
        low, high = ref.intervals.get("auc") or (ref.metric("auc"),) * 2
        ax.axhspan(low, high, color=line.get_color(), alpha=0.12)
        ax.annotate(f"{ref.row_label} (reference)", (0.01, ref.metric("auc")), xycoords=("axes fraction", "data"),
                    textcoords="offset points", xytext=(0, 3), fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("step-1 training rows (log scale)")
    ax.set_ylabel("test AUC (95% interval)")
    ax.set_title(f"Budget study: {runs.name}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=120, metadata={"Software": None})  # no library version: bytes change only with the data
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, help="the Markdown page; each folder's figure goes beside it")
    args = parser.parse_args(argv)
    text = render(args.runs)
    if args.output:
        args.output.write_text(text)
        for runs in args.runs:
            figure(runs, args.output.parent / f"{runs.name}.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
