"""The budget study's page and figure (issue 9): test AUC of TALLRec and CoLLM rows against the
rows step 1 trained on, each point with its wall time, and at each budget whether one row beats
another by a paired bootstrap over users, from the records of ``leaderboards/budget-*.toml`` alone.
The rows without a step 1, which no budget moves, are the references the LLM rows are held against:
the collaborative records a CoLLM-MF run writes on the way (MF), and the untuned LLM (ICL) where
the suite has it.

    python scripts/budget_study.py leaderboards/runs/budget-ml-1m [...] --output leaderboards/studies/budget.md

The figure of each records folder is written beside the page as ``<folder name>.png``.
"""
from __future__ import annotations

import json

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from tabulate import tabulate

from collm_bench.reporting.leaderboard import paired_auc_difference, shown_value, usual_options
sys.path.insert(0, str(Path(__file__).resolve().parent))   # the study code beside this script
from paper_claims_lib import step1_rows  # noqa: E402
from collm_bench.records.store import iter_records
from collm_bench.records.record import RunRecord, unique_runs

HEADER = """# Budget study: how much step-1 training the LLM rows need

Written by `scripts/budget_study.py` from the committed records alone. Step-1 rows are steps run
x batch size of step 1 (TALLRec's LoRA tuning on text prompts, which CoLLM starts from); the
model scored is the best validation checkpoint, whose rows are shown beside. The test AUC has its
95% interval from a bootstrap over users. Train minutes are the training stages' own time
(encoder, step 1, step 2); wall minutes add validation during training and scoring, all as
measured when each stage was computed (cached stages included), on the machine each record names,
often beside other jobs: compare them within a study. At each budget a row is `higher` or `lower`
than another when the 95% interval of their AUC difference, by a paired bootstrap over users on
the same test rows and resamples, excludes 0, and `not distinguishable` when it does not; each
comparison is a 95% interval on its own, not corrected for the number of comparisons.
"""


class Point:
    """One LLM record of the study: its step-1 budget and what it cost."""

    def __init__(self, record: RunRecord, rows: int) -> None:
        step1, batch = record.training["llm-step1"], int(record.options["batch_size"])
        self.record, self.name, self.seed, self.rows = record, record.row_label, record.seed, rows
        self.best_rows = int(step1.get("best_step", 0)) * batch
        self.valid_auc = float(step1.get("best_valid_auc", math.nan))
        step2 = record.training.get("llm-step2")
        self.step2_rows = int(step2.get("steps_run", 0)) * batch if isinstance(step2, dict) else 0
        self.train_minutes = float(record.timing("train_seconds") or 0) / 60
        self.wall_minutes = wall_minutes(record)


class Study(NamedTuple):
    points: dict[str, list[Point]]  # row name -> its points, by step-1 rows then seed
    references: list[RunRecord]     # rows without a step 1, one per name (the lowest seed)
    skipped: list[str]              # records that are neither, with the reason


def wall_minutes(record: RunRecord) -> float:
    """The seconds of every stage that made the record (training, validation, scoring), in minutes."""
    stages = record.timing("stages") or {}
    return sum(float(s.get("seconds") or 0) for s in stages.values() if isinstance(s, dict)) / 60


def study(records: list[RunRecord]) -> Study:
    points: dict[str, list[Point]] = defaultdict(list)
    references: dict[str, RunRecord] = {}
    skipped = []
    for record in sorted(unique_runs(records), key=lambda r: (r.row_label, r.seed)):
        rows = step1_rows(record)
        if record.metric("auc") is None:
            skipped.append(f"{record.run_id}: no test AUC")
        elif "llm-step1" not in record.training:  # no step 1 (collaborative rows, ICL): no budget moves it
            references.setdefault(record.row_label, record)
        elif rows is None:
            skipped.append(f"{record.run_id}: no step-1 steps run and batch size recorded")
        else:
            points[record.row_label].append(Point(record, rows))
    return Study({name: sorted(values, key=lambda p: (p.rows, p.seed)) for name, values in sorted(points.items())},
                 [references[name] for name in sorted(references)], skipped)


BUDGET_AXIS = ("max_steps", "patience")   # what the study varies between points


def mixed_options(data: dict[str, list[Point]]) -> list[str]:
    """One line per point of a row run with other options (beyond the budget axis) than most of
    that row's points: a curve must say where it is not one recipe (e.g. a point made before a
    preset changed, awaiting its rerun)."""
    lines = []
    for name, values in data.items():
        rest = [{k: v for k, v in (p.record.options or {}).items() if k not in BUDGET_AXIS} for p in values]
        usual = usual_options(rest)
        for p, options in zip(values, rest):
            differ = sorted(k for k in usual if shown_value(options.get(k)) != usual[k])
            if differ:
                lines.append(f"{name} at {p.rows:,} step-1 rows was run with other options than the row's other "
                             f"points: {', '.join(f'{k}={shown_value(options.get(k))} (others: {usual[k]})' for k in differ)}")
    return lines


def _metric_cell(record: RunRecord, metric: str = "auc") -> str:
    value, bounds = record.metric(metric), record.intervals.get(metric)
    if value is None:
        return "-"
    return f"{value:.4f}" + (f" ({bounds[0]:.4f}-{bounds[1]:.4f})" if bounds else "")


def compare(a: RunRecord, b: RunRecord) -> str:
    """``a`` against ``b`` on test AUC: the difference, its paired 95% interval and the verdict."""
    diff = a.metric("auc") - b.metric("auc")
    bounds = paired_auc_difference(a, b)
    if bounds is None or any(math.isnan(x) for x in bounds):
        return f"{diff:+.4f} (not paired)"
    word = "higher" if bounds[0] > 0 else "lower" if bounds[1] < 0 else "not distinguishable"
    return f"{diff:+.4f} ({bounds[0]:+.4f} to {bounds[1]:+.4f}): {word}"


def read(runs: Path) -> list[RunRecord]:
    return [record for _, record in iter_records(runs)]


def section(runs: Path, records: list[RunRecord]) -> str:
    data, refs, skipped = study(records)
    if not data:
        return f"## {runs.name}\n\nNo LLM records yet.\n"
    every = [p.record for values in data.values() for p in values] + refs
    title = (f"## {runs.name}: {', '.join(sorted({r.dataset for r in every}))}, "
             f"{', '.join(sorted({p.record.backbone for values in data.values() for p in values}))}, "
             f"{'; '.join(sorted({r.evaluated_rows for r in every}))}")
    several = any(len({p.seed for p in values}) > 1 for values in data.values())
    lines = [[p.name + (f" (seed {p.seed})" if several else ""), f"{p.rows:,}", f"{p.best_rows:,}",
              f"{p.valid_auc:.4f}", f"{p.step2_rows:,}" if p.step2_rows else "-", f"{p.train_minutes:.1f}",
              f"{p.wall_minutes:.1f}", _metric_cell(p.record), _metric_cell(p.record, "uauc")]
             for values in data.values() for p in values]
    lines += [[f"{r.row_label} (reference, seed {r.seed})", "-", "-", "-", "-", f"{r.timing('train_seconds') / 60:.1f}"
               if r.timing("train_seconds") else "-", f"{wall_minutes(r):.1f}", _metric_cell(r),
               _metric_cell(r, "uauc")] for r in refs]
    table = tabulate(lines, headers=("row", "step-1 rows", "best checkpoint at", "step-1 valid AUC", "step-2 rows",
                                     "train min", "wall min", "test AUC (95%)", "test UAUC (95%)"),
                     tablefmt="github", disable_numparse=True)
    # at each budget (and seed): every LLM row against TALLRec, and against each reference
    llm_at = {(p.name, p.rows, p.seed): p.record for values in data.values() for p in values}
    reference_by_name = {r.row_label: r for r in refs}
    pairs = [(name, "tallrec") for name in data if name != "tallrec" and "tallrec" in data]
    pairs += [(name, ref) for name in data for ref in reference_by_name]
    budgets = sorted({(p.rows, p.seed) for values in data.values() for p in values})

    def cell(a: str, b: str, rows: int, seed: int) -> str:
        first, second = llm_at.get((a, rows, seed)), llm_at.get((b, rows, seed)) or reference_by_name.get(b)
        return compare(first, second) if first and second else "-"

    verdict_rows = [[f"{rows:,}" + (f" (seed {seed})" if several else "")] + [cell(a, b, rows, seed) for a, b in pairs]
                    for rows, seed in budgets]
    verdicts = tabulate(verdict_rows, headers=["step-1 rows"] + [f"{a} - {b}" for a, b in pairs], tablefmt="github",
                        disable_numparse=True)
    notes = "".join(f"- left out: {line}\n" for line in skipped)
    notes += "".join(f"- not the same recipe: {line}\n" for line in mixed_options(data))
    return (f"{title}\n\n![Test AUC against step-1 training rows: {runs.name}]({runs.name}.png)\n\n{table}\n\n"
            f"Test AUC differences at each budget (paired bootstrap over users, 95%):\n\n{verdicts}\n"
            + (f"\n{notes}" if notes else ""))


def render(folders: list[Path], records: dict[Path, list[RunRecord]] | None = None) -> str:
    """The Markdown page: the header, then one section per records folder (``records``: each
    folder's records when already read)."""
    records = records or {runs: read(runs) for runs in folders}
    return HEADER + "".join("\n" + section(runs, records[runs]) for runs in folders)


def figure(runs: Path, records: list[RunRecord], output: Path) -> None:
    """Test AUC (with its interval) against step-1 rows, one line per LLM row and seed, each
    reference a horizontal band, each point labelled with its wall minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, refs, _ = study(records)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    budgets = sorted({p.rows for values in data.values() for p in values})
    for name, values in data.items():
        seeds = sorted({p.seed for p in values})
        for seed in seeds:
            line = [p for p in values if p.seed == seed]
            ys = [p.record.metric("auc") for p in line]
            bounds = [p.record.intervals.get("auc") or (y, y) for p, y in zip(line, ys)]
            err = [[y - b[0] for y, b in zip(ys, bounds)], [b[1] - y for y, b in zip(ys, bounds)]]
            ax.errorbar([p.rows for p in line], ys, yerr=err, marker="o", capsize=3,
                        label=name + (f" (seed {seed})" if len(seeds) > 1 else ""))
            for p, y in zip(line, ys):
                ax.annotate(f"{p.wall_minutes:.0f} min", (p.rows, y), textcoords="offset points", xytext=(5, -10),
                            fontsize=7)
    for ref, color in zip(refs, ("dimgrey", "tab:red", "tab:purple", "tab:brown", "tab:olive")):
        line = ax.axhline(ref.metric("auc"), linestyle="--", linewidth=1, color=color,
                          label=f"{ref.row_label}, seed {ref.seed} (no step 1)")
        low, high = ref.intervals.get("auc") or (ref.metric("auc"),) * 2
        ax.axhspan(low, high, color=line.get_color(), alpha=0.12, label=f"{ref.row_label}: its 95% interval")
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{rows:,}" for rows in budgets])   # the budgets run, not powers of ten
    ax.minorticks_off()
    ax.set_xlabel("step-1 training rows (log scale); point labels: wall minutes of the run's stages")
    ax.set_ylabel(f"test AUC, with its 95% interval\n(the axis starts at {ax.get_ylim()[0]:.2f}, not 0)")
    datasets = ", ".join(sorted({r.dataset for r in records}))
    backbones = ", ".join(sorted({p.record.backbone for values in data.values() for p in values if p.record.backbone}))
    rows = sorted({p.record.evaluated_rows for values in data.values() for p in values})
    ax.set_title(f"Budget study: {datasets}, backbone {backbones}, step 1 on {budgets[0]:,} to {budgets[-1]:,} rows"
                 if budgets else f"Budget study: {datasets}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)   # off the data
    fig.text(0.01, 0.01, f"Evaluated on {'; '.join(rows)}. Wall minutes: the seconds each stage recorded (a stage "
             "resumed before stages summed their processes' time counts its last process).", fontsize=6)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    drawn = {"x_ticks": budgets, "points": {name: [[p.rows, p.record.metric("auc")] for p in values]
                                            for name, values in data.items()},
             "references": {r.row_label: r.metric("auc") for r in refs}}
    # no library version (bytes change with the data only); what was drawn, for a reader to check
    fig.savefig(output, dpi=120, metadata={"Software": None, "Description": json.dumps(drawn, sort_keys=True)})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--output", type=Path, help="the Markdown page; each folder's figure goes beside it")
    args = parser.parse_args(argv)
    records = {runs: read(runs) for runs in args.runs}
    text = render(args.runs, records)
    if args.output:
        args.output.write_text(text)
        for runs in args.runs:
            figure(runs, records[runs], args.output.parent / f"{runs.name}.png")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
