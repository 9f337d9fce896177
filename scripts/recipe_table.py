"""The step-1 recipe table (issue 9): each candidate's validation AUC curve and best, from the
records of ``leaderboards/recipe-*.toml`` alone. Candidates are ranked by their best validation
AUC; test metrics are left out on purpose (the choice is made on validation only).

    python scripts/recipe_table.py leaderboards/runs/recipe-ml-100k [...] [--output FILE.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from collm_bench.leaderboard import non_default_options
from collm_bench.plugins import get_registry
from collm_bench.records import iter_records


def rows(runs: Path) -> tuple[list[list[str]], set[str]]:
    """The table's lines, best first, and the options every candidate shares (left out of them)."""
    registry = get_registry()
    records = [record for _, record in iter_records(runs)]
    changes = {record.run_id: non_default_options(record, registry) for record in records}
    shared = set.intersection(*(set(c) for c in changes.values())) if changes else set()  # the study's setting
    out = []
    for record in records:
        stage = next((v for k, v in record.training.items() if k.endswith("step1") or k.endswith("-tune")), None)
        if not isinstance(stage, dict) or "best_valid_auc" not in stage:
            continue
        changed = ", ".join(c for c in changes[record.run_id] if c not in shared) or "(the study's baseline)"
        curve = " ".join(f"{auc:.3f}" for _, auc in stage.get("valid_curve", []))
        out.append((stage["best_valid_auc"], [changed, f"{stage['best_valid_auc']:.4f}", str(stage["best_step"]),
                                              curve, f"{stage.get('train_seconds', 0):.0f}", record.run_id]))
    return [line for _, line in sorted(out, key=lambda item: -item[0])], shared


def render(folders: list[Path]) -> str:
    """The Markdown page: one ranked table per records folder."""
    parts = []
    for runs in folders:
        lines, shared = rows(runs)
        table = tabulate(lines, headers=("candidate", "best valid AUC", "at step", "valid AUC at each check",
                                         "train s", "run"), tablefmt="github", disable_numparse=True)
        parts.append(f"## Step-1 recipe candidates ({runs.name})\n\nRanked by best validation AUC (valid_small "
                     "rows; the step-0 check is the untrained model). Test metrics are not used to choose. Every "
                     f"candidate: {', '.join(sorted(shared)) or 'the defaults'}, besides the change it names.\n\n"
                     + table + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    text = render(args.runs)
    if args.output:
        args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
