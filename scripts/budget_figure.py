"""The budget study's table and figure (issue 9): test AUC of TALLRec and CoLLM rows against
step-1 training rows (steps x batch size), each point labelled with its wall time, from the
records of ``leaderboards/budget-*.toml`` alone.

    python scripts/budget_figure.py leaderboards/runs/budget-ml-1m --output leaderboards/budget-ml-1m.png
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from collm_bench.records import iter_records


def points(runs: Path) -> dict[str, list[tuple[int, float, float, int]]]:
    """Row name -> [(step-1 rows, test AUC, train seconds, step-2 rows)], by step-1 rows."""
    out: dict[str, list] = defaultdict(list)
    for _, record in iter_records(runs):
        options, step1 = record.options, record.training.get("llm-step1")
        if not isinstance(step1, dict) or record.metric("auc") is None:
            continue
        batch = int(options.get("batch_size") or 0)
        rows = int(step1.get("steps_run", options.get("max_steps", 0))) * batch
        step2 = record.training.get("llm-step2")
        step2_rows = int(step2.get("steps_run", 0)) * batch if isinstance(step2, dict) else 0
        out[record.row_label].append((rows, record.metric("auc"), float(record.timing("train_seconds") or 0),
                                      step2_rows))
    return {name: sorted(values) for name, values in sorted(out.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--output", type=Path, help="the PNG figure (a Markdown table goes beside it)")
    args = parser.parse_args(argv)
    data = points(args.runs)
    table = tabulate([(name, f"{rows:,}", f"{auc:.4f}", f"{seconds / 60:.1f}", f"{step2:,}" if step2 else "-")
                      for name, values in data.items() for rows, auc, seconds, step2 in values],
                     headers=("row", "step-1 rows", "test AUC", "train min", "step-2 rows"), tablefmt="github",
                     disable_numparse=True)
    text = f"## Budget study ({args.runs.name})\n\n{table}\n"
    print(text)
    if args.output:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, values in data.items():
            xs, ys = [v[0] for v in values], [v[1] for v in values]
            ax.plot(xs, ys, marker="o", label=name)
            for x, y, seconds, _ in values:
                ax.annotate(f"{seconds / 60:.0f} min", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("step-1 training rows")
        ax.set_ylabel("test AUC")
        ax.set_title(f"Budget study: {args.runs.name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.output, dpi=120)
        args.output.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
