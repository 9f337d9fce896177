"""The paper's Table II and Figure 3 observations, claim by claim, on committed records
(``paper_claims_lib``): an overview, then one section per records folder, dataset, LLM
backbone and step-1 budget.

    python scripts/paper_claims.py leaderboards/runs/paper leaderboards/runs/paper-ml-1m-collm \
        leaderboards/runs/budget-ml-1m leaderboards/runs/smollm2-ml-100k [--output leaderboards/studies/claims.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the study code beside this script
from paper_claims_lib import Verdict, check_claims, render_claims, render_overview, step1_rows  # noqa: E402
from collm_bench.records.store import iter_records
from collm_bench.records.record import RunRecord

HEADER = """# The paper's claims on these boards

Written by `scripts/paper_claims.py` from the committed records alone. A claim holds when every
comparison in it holds on the values the paper tables show (mean over seeds). A comparison is
marked `~` when its gap is smaller than its cells' noise (half the 95% user-bootstrap interval of
a one-seed row, the standard deviation of a several-seed row), so it could go either way, and `?`
when a cell has no noise recorded (warm and cold cells never have one). A claim some of whose rows
are missing holds at most "on the rows present"; one without rows is "not measured". A records
folder with several step-1 budgets (the budget study) gets one section per budget: the TALLRec and
CoLLM rows whose step 1 trained on that many rows, beside every row without a step 1
(collaborative rows, ICL, Prompt4NR, CTRL), which the budget does not change.
"""

OVERVIEW = """## Overview

One column per section below (dataset, LLM backbone, step-1 training rows, records folder):
`holds`, `no` (does not hold), `holds*` (holds on the rows present, some missing), `-` (not
measured); `~` marks a narrow verdict, one that rests on gaps inside the cells' noise (a claim
that holds with a comparison marked `~`, or fails only on comparisons marked `~`).
"""


def budgets(records: list[RunRecord]) -> list[int | None]:
    """The step-1 budgets (rows) of the records that have a step 1 (TALLRec, CoLLM), ascending;
    ``[None]`` when none has."""
    return sorted({rows for r in records if (rows := step1_rows(r)) is not None}) or [None]


def sections(runs: Path) -> list[tuple[str, str, list[Verdict]]]:
    """(overview column title, section title, verdicts) per dataset, backbone and step-1 budget."""
    records = [record for _, record in iter_records(runs)]
    out = []
    for dataset in sorted({r.dataset for r in records}):
        here = [r for r in records if r.dataset == dataset]
        backbones = sorted({r.backbone for r in here if r.backbone and r.method in ("collm", "tallrec")})
        for backbone in backbones:
            for budget in budgets([r for r in here if r.backbone == backbone]):
                # a budget's section: its step-1 records, and every record without a step 1
                chosen = [r for r in here if step1_rows(r) in (None, budget)]
                tested = ", ".join(f"{n:,}" for n in sorted({r.evaluation.get("rows") or 0 for r in chosen}) if n)
                step1 = f", step 1 on {budget:,} rows" if budget is not None else ""
                title = f"{dataset}, {backbone} (`{runs.name}`, {tested} test rows{step1})"
                column = f"{dataset} {backbone}" + (f" {budget:,}" if budget is not None else "") + f" (`{runs.name}`)"
                out.append((column, title, check_claims(chosen, dataset, backbone)))
    return out


def render(runs_folders: list[Path]) -> str:
    """The whole page: the header, the overview (a column per section), then the sections of each
    records folder in order."""
    every = [section for runs in runs_folders for section in sections(runs)]
    if not every:
        return HEADER
    overview = render_overview([(column, verdicts) for column, _, verdicts in every])
    return (HEADER + "\n" + OVERVIEW + "\n" + overview
            + "".join("\n" + render_claims(verdicts, title) for _, title, verdicts in every))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    text = render(args.runs)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
