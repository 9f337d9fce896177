"""The step-1 recipe table (issue 9): each candidate's validation AUC curve and best, from the
records of ``leaderboards/recipe-*.toml`` alone. Candidates are ranked by their best validation
AUC (the mean over seeds where a candidate has several); test metrics are left out on purpose
(the choice is made on validation only).

    python scripts/recipe_table.py leaderboards/runs/recipe-ml-100k [...] [--output FILE.md]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from collm_bench.reporting.leaderboard import non_default_options, shown_value, usual_options
from collm_bench.api.registry import get_registry
from collm_bench.records.store import iter_records, mean_std


BASELINE = "(the study's baseline)"


def _signed(values: list[float]) -> str:
    """``+mean`` or ``+mean ± std`` of differences."""
    mean = statistics.fmean(values)
    return f"{mean:+.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "")


def _stage(record) -> dict | None:
    stage = next((v for k, v in record.training.items() if k.endswith("step1") or k.endswith("-tune")), None)
    return stage if isinstance(stage, dict) and "best_valid_auc" in stage else None


def rows(runs: Path) -> tuple[list[list[str]], set[str]]:
    """The table's lines, best first (by the mean over seeds of each candidate's best validation
    AUC), and the options every candidate shares (left out of them)."""
    registry = get_registry()
    records = [record for _, record in iter_records(runs) if _stage(record)]
    changes = {record.run_id: non_default_options(record, registry) for record in records}
    candidates: dict[str, list] = defaultdict(list)  # the seeds of one candidate are one line
    for record in sorted(records, key=lambda r: (len(changes[r.run_id]), r.seed)):
        candidates[record.config_digest].append(record)
    # The study's setting is each option's most common value among the candidates, not today's
    # preset: a candidate the preset has since adopted stays named by its change.
    options = {digest: seeds[0].config.get("options") or {} for digest, seeds in candidates.items()}
    study = usual_options(options.values())
    named = {digest: ", ".join(f"{k}={shown_value(v)}" for k, v in o.items() if shown_value(v) != study[k]) or BASELINE
             for digest, o in options.items()}
    shared = {c for cs in changes.values() for c in cs if study.get(c.partition("=")[0]) == c.partition("=")[2]}
    base_best = {r.seed: _stage(r)["best_valid_auc"]
                 for digest, seeds in candidates.items() if named[digest] == BASELINE for r in seeds}
    out = []
    for digest, seeds in candidates.items():
        stages = [_stage(r) for r in seeds]
        best = [s["best_valid_auc"] for s in stages]
        changed = named[digest]
        # a seed fixes the LoRA initialization and the shuffling, so differences seed by seed pair
        diffs = [b - base_best[r.seed] for r, b in zip(seeds, best) if r.seed in base_best]
        paired = "-" if changed == BASELINE or not diffs else f"{_signed(diffs)} ({len(diffs)})"
        read = {int(s.get("steps_run", 0)) * int(r.options.get("batch_size") or 0) for s, r in zip(stages, seeds)}
        curves = " / ".join(" ".join(f"{auc:.3f}" for _, auc in s.get("valid_curve", [])) for s in stages)
        out.append((statistics.fmean(best), [
            changed, mean_std(best), ",".join(str(r.seed) for r in seeds), " / ".join(str(s["best_step"]) for s in stages),
            paired, " / ".join(f"{n:,}" for n in sorted(read)), curves,
            mean_std((s.get("train_seconds") for s in stages), 0),
            " ".join(r.run_id for r in seeds)]))
    return [line for _, line in sorted(out, key=lambda item: -item[0])], shared


def render(folders: list[Path]) -> str:
    """The Markdown page: one ranked table per records folder."""
    parts = []
    for runs in folders:
        lines, shared = rows(runs)
        table = tabulate(lines, headers=("candidate", "best valid AUC", "seeds", "at step",
                                         "vs baseline, same seeds (n)", "step-1 rows",
                                         "valid AUC at each check", "train s", "runs"),
                         tablefmt="github", disable_numparse=True)
        parts.append(f"## Step-1 recipe candidates ({runs.name})\n\nRanked by best validation AUC (valid_small "
                     "rows; the step-0 check is the untrained model), the mean ± std over seeds where a candidate "
                     "has several (their curves separated by /). Against the baseline: the mean ± std over the seeds "
                     "both have of the difference in best validation AUC, seed by seed (a seed fixes the "
                     "LoRA initialization and the shuffling, so each pair shares that noise). Step-1 rows: the rows step 1 trained on (steps "
                     "run x batch size), so a candidate that reads more rows also has more budget. Test metrics "
                     "are not used to choose. Every candidate: "
                     f"{', '.join(sorted(shared)) or 'the defaults'}, besides the change it names.\n\n" + table + "\n")
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
