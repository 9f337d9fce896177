"""The paper's Table II and Figure 3 observations, claim by claim, on committed records
(``collm_bench.paper_claims``): one section per records folder, dataset and LLM backbone.

    python scripts/paper_claims.py leaderboards/runs/paper leaderboards/runs/paper-ml-1m-collm \
        [--output leaderboards/claims.md]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collm_bench.paper_claims import check_claims, render_claims
from collm_bench.records import iter_records

HEADER = """# The paper's claims on these boards

Written by `scripts/paper_claims.py` from the committed records alone. A claim holds when every
comparison in it holds on the values the paper tables show (mean over seeds). A comparison is
marked `~` when its gap is smaller than its cells' noise (half the 95% user-bootstrap interval of
a one-seed row, the standard deviation of a several-seed row), so it could go either way, and `?`
when a cell has no noise recorded (warm and cold cells never have one). A claim some of whose rows
are missing holds at most "on the rows present"; one without rows is "not measured".
"""


def sections(runs: Path) -> list[str]:
    records = [record for _, record in iter_records(runs)]
    out = []
    for dataset in sorted({r.dataset for r in records}):
        backbones = sorted({r.backbone for r in records if r.dataset == dataset and r.backbone
                            and r.method in ("collm", "tallrec")})
        for backbone in backbones:
            verdicts = check_claims(records, dataset, backbone)
            rows = {r.evaluation.get("rows") for r in records if r.dataset == dataset}
            title = f"{dataset}, {backbone} (`{runs.name}`, {', '.join(f'{n:,}' for n in sorted(rows) if n)} test rows)"
            out.append(render_claims(verdicts, title))
    return out


def render(runs_folders: list[Path]) -> str:
    """The whole page: the header, then the sections of each records folder in order."""
    return HEADER + "".join("\n" + s for runs in runs_folders for s in sections(runs))


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
