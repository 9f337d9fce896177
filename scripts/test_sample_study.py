"""The test-sample study (issue 30, item 3): how wide a run's AUC interval is, and how far its AUC
can fall from the whole split's, under each way of drawing the embedded default's ~3,000 test rows.

It reads whole-split runs (their ``predictions.csv``), checks each against its committed record
(same run id, same predictions digest), and draws each scheme's sample from those predictions
again and again: the rows a sample would have scored are already scored, so nothing is trained.

    collm-bench run --method din --full-test --out runs   # and mf, sasrec: seconds to minutes each
    python scripts/test_sample_study.py runs/ml-100k__din__seed0__* ... --cost minilm smollm2 \
        --output leaderboards/studies/test-sample.md

Schemes: the whole-user sample the default used before 2026-12-07 (a copy of its code is kept
here, for this comparison only) and the library's sample, rows drawn within every (user, label)
cell (``collm_bench.api.methods.evaluation_rows``), at 3,000 rows (the `cpu` preset's) and 4,500
(1.5x the scoring time). Each scheme is drawn with seeds 0..N-1; "the board's draw" is seed 2023,
the one every run of the `cpu` preset scores.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from collm_bench.api.methods import SAMPLE_SEED, evaluation_rows
from collm_bench.data.datasets import resolve_dataset
from collm_bench.data.interactions import build_interactions
from collm_bench.records.bootstrap import intervals
from collm_bench.records.metrics import auc
from collm_bench.records.predictions import predictions_sha256

ROOT = Path(__file__).resolve().parents[1]


def whole_users(data, sample_rows: int, seed: int) -> np.ndarray:
    """The default's sample before 2026-12-07: whole users in two strata (with and without warm
    test rows), each drawn until it holds its share of ``sample_rows``."""
    test = data.rows("test")
    users, inverse, counts = np.unique(data.user[test], return_inverse=True, return_counts=True)
    has_warm = np.bincount(inverse, weights=(data.subset[test] == "warm"), minlength=len(users)) > 0
    rng = np.random.default_rng(seed)
    chosen = []
    for stratum in (has_warm, ~has_warm):
        members = np.flatnonzero(stratum)
        quota = int(np.ceil(sample_rows * counts[members].sum() / len(test)))
        order = members[rng.permutation(len(members))]
        chosen.append(users[order[:int(np.searchsorted(np.cumsum(counts[order]), quota)) + 1]])
    return test[np.isin(data.user[test], np.concatenate(chosen))]


SCHEMES = {
    "whole users, 3,000 rows (before)": lambda data, seed: whole_users(data, 3000, seed),
    "rows within users, 3,000 rows (now)": lambda data, seed: evaluation_rows(data, 3000, seed=seed)[0],
    "rows within users, 4,500 rows": lambda data, seed: evaluation_rows(data, 4500, seed=seed)[0],
}


def committed(run_dir: Path) -> Path:
    """The committed record of this run (same run id) under leaderboards/runs, whose predictions
    digest the run's predictions must have."""
    found = sorted(ROOT.glob(f"leaderboards/runs/*/{run_dir.name}/record.json"))
    if not found:
        sys.exit(f"{run_dir.name}: no committed record of this run under leaderboards/runs")
    return found[0]


def study(run_dir: Path, data, draws: int) -> list[list]:
    record = json.loads(committed(run_dir).read_text())
    predictions = run_dir / "predictions.csv"
    if predictions_sha256(run_dir) != record["predictions_sha256"]:
        sys.exit(f"{predictions}: not the predictions of the committed record {run_dir.name}")
    if record["evaluation"].get("sampled"):
        sys.exit(f"{run_dir.name}: scored a sample; the study needs whole-split runs")
    scores = pd.read_csv(predictions)["score"].to_numpy()
    test = data.rows("test")
    full = auc(data.label[test], scores)
    whole = intervals(data.user[test], data.label[test], scores)["auc"]
    out = [[record["method"], "whole split", len(test), len(np.unique(data.user[test])),
            len(np.unique(data.user[test][data.subset[test] == "warm"])), f"{full:.4f}", "", "",
            f"{whole[1] - whole[0]:.3f}"]]
    for name, draw in SCHEMES.items():
        aucs = []
        for seed in range(draws):
            rows = draw(data, seed)
            aucs.append(auc(data.label[rows], scores[np.searchsorted(test, rows)]))
        rows = draw(data, SAMPLE_SEED)
        picked = scores[np.searchsorted(test, rows)]
        interval = intervals(data.user[rows], data.label[rows], picked)["auc"]
        users = data.user[rows]
        warm_users = len(np.unique(users[data.subset[rows] == "warm"]))
        out.append([record["method"], name, len(rows), len(np.unique(users)), warm_users,
                    f"{auc(data.label[rows], picked):.4f}", f"{np.mean(aucs) - full:+.4f}",
                    f"{np.std(aucs, ddof=1):.4f}", f"{interval[1] - interval[0]:.3f}"])
    return out


HEADER = """# Test-sample study: a default sample with power

Written by `scripts/test_sample_study.py` from whole-split runs whose predictions it checks
against their committed records (run ids below, on [Table II of ml-100k](../boards/table2-ml-100k.md)).
Each scheme is drawn {draws} times (seeds 0-{last}); its AUC is compared with the same run's AUC
on the whole test split. Bias: mean over draws minus the whole split's AUC; sd: spread over draws;
the board's draw is seed {seed}, the sample every `cpu`-preset run scores (rows, users and AUC are
of that draw). Interval: the width of the board's draw's 95% AUC interval by a bootstrap over
users (1,000 resamples), as boards print it.

"""

FOOTER = """
Reading: the whole-user sample's interval is wide because it holds few users, and its AUC moves
between draws by about as much as the gaps between the default board's rows. Rows drawn within
every user keep almost every test user and the warm subset's, at the same number of rows (about
the same scoring time: below); their AUC is within about 0.001 of the whole split's on average (a ratio of
two unbiased pair counts). One draw can still sit a few of its sd from the whole split (MF's, in
the table): rows of one board all score the same draw, so they compare with each other, and the
paired intervals of the boards are about that. The `cpu` preset keeps 3,000 rows: 4,500 narrows
the interval a little more for 1.5x the scoring time. docs/protocol.md ("The test sample") says
how the sample is drawn.
"""


def scoring_cost(data, dataset, backbones: list[str]) -> str:
    """Tokens each backbone reads to score the board's draw of each 3,000-row scheme (what the
    scoring time follows: the same prompts, batched alike), with the shared-prefix reading of a
    causal backbone, whose saving depends on how many rows of a user are scored together."""
    from collm_bench.api.registry import get_registry
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.llm.prompts import prefix_groups
    from collm_bench.llmrec import PromptMaker

    registry = get_registry()
    schemes = {name: draw(data, SAMPLE_SEED) for name, draw in SCHEMES.items() if "3,000" in name}
    lines = []
    for name in backbones:
        backbone = registry.get("backbone", name).load(BackboneOptions())
        maker = PromptMaker(data, dataset.items, dataset.item_noun, backbone, history_titles=5)
        read = {}
        for scheme, rows in schemes.items():
            tokenized = maker.tokenized(rows, False)
            read[scheme] = sum(len(ids) for ids in tokenized.ids)
            if backbone.kind == "causal":
                groups = prefix_groups(tokenized, data.user[rows], max_rows=64)
                read[scheme] = sum(g.prefix_len + sum(len(tokenized.ids[r]) - g.prefix_len for r in g.rows)
                                   for g in groups)
        before, now = read.values()
        lines.append([name, *(f"{v:,}" for v in read.values()), f"{now / before:.2f}x"])
    return tabulate(lines, headers=["backbone", *schemes, "now / before"], tablefmt="github", disable_numparse=True)


COST = """
## Scoring cost

Tokens read to score the board's draw of each scheme at 3,000 rows (5 history titles), which
scoring time follows (`--cost`). A causal backbone reads a prefix shared by consecutive prompts
of one user once; drawing a few rows of every user leaves fewer rows to share it.

{table}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="whole-split run directories (record.json, predictions.csv)")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--cost", nargs="*", default=[], metavar="BACKBONE",
                        help="also the tokens these backbones read to score each sample (minilm smollm2)")
    args = parser.parse_args(argv)
    dataset = resolve_dataset(args.dataset)
    data = build_interactions(dataset)
    rows = [row for run_dir in args.runs for row in study(run_dir, data, args.draws)]
    table = tabulate(rows, headers=["run", "test rows", "rows", "users", "warm users", "AUC (board's draw)",
                                    "bias over draws", "sd over draws", "interval width"],
                     tablefmt="github", disable_numparse=True)
    runs = "Runs: " + ", ".join(f"`{d.name}`" for d in args.runs) + ".\n"
    page = HEADER.format(draws=args.draws, last=args.draws - 1, seed=SAMPLE_SEED) + table + "\n\n" + runs + FOOTER
    if args.cost:
        page += COST.format(table=scoring_cost(data, dataset, args.cost))
    if args.output:
        args.output.write_text(page)
    print(page)


if __name__ == "__main__":
    main()
