"""What a method (a leaderboard row) receives and returns, and the shared evaluation sample.

``MethodSpec.run(context) -> MethodOutput``. The runner resolves and validates every name
and option before calling it, picks the evaluation rows (the same for every method on a
dataset), and turns the output into predictions, metrics and a run record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from collm_bench.data.format import PreparedDataset
from collm_bench.data.interactions import Interactions
from collm_bench.cache.stages import StageCache

SAMPLE_SEED = 2023


@dataclass
class MethodContext:
    """Everything a method needs for one run, resolved and validated by the runner."""

    dataset: PreparedDataset
    data: Interactions
    eval_rows: np.ndarray            # indices into ``data`` of the rows to score, in file order
    seed: int
    options: Any                     # the method's validated options dataclass (or None)
    encoder: str | None              # collaborative encoder name, for methods that use one
    encoder_options: Any             # its validated options dataclass
    backbone: str | None             # LLM backbone name, for LLM methods
    backbone_options: Any
    registry: Any                    # collm_bench.api.registry.Registry
    stages: StageCache
    progress: Callable[[str], None] = print
    out: Path | None = None          # the output root, for methods that read other runs (ensemble)


@dataclass
class MethodOutput:
    """Scores for ``context.eval_rows`` (same order) and what the record should say of them.

    ``companions`` are further leaderboard rows the method produced on the way (CoLLM's
    pretrained encoder and its step-1 model are the MF/TALLRec rows): (method label, output).
    """

    scores: np.ndarray
    train_seconds: float
    inference_seconds: float
    stages: dict[str, Any] = field(default_factory=dict)      # per stage: seconds, cached, key
    details: dict[str, Any] = field(default_factory=dict)     # training curves, best steps, ...
    encoder: str | None = None
    backbone: str | None = None
    meaningless: bool = False        # e.g. random-weight backbones: numbers mean nothing
    options: dict[str, Any] | None = None   # the resolved options defining this row (presets applied)
    label: str | None = None         # display name when the method name alone does not say it
    companions: list[tuple[str, "MethodOutput"]] = field(default_factory=list)


def evaluation_rows(data: Interactions, sample_rows: int | None, seed: int = SAMPLE_SEED) -> tuple[np.ndarray, dict[str, Any]]:
    """The test rows to score: all of them, or a seeded sample of whole users with at least
    ``sample_rows`` rows. The sample depends only on the dataset, never on the method or the
    run's seed, so every method is compared on the same rows.

    Users are drawn in two strata, users with and without warm test rows, each in proportion
    to its share of test rows: warm rows gather in few users (on ml-100k, 86 of 327 test users
    hold all of them), and an unstratified draw of ~50 users can leave the warm subset with a
    handful of users.
    """
    test = data.rows("test")
    info: dict[str, Any] = {"split": "test", "rows": int(len(test)), "total_rows": int(len(test)),
                            "sampled": False}
    if sample_rows is None or sample_rows >= len(test):
        return test, info
    users, inverse, counts = np.unique(data.user[test], return_inverse=True, return_counts=True)
    has_warm = np.bincount(inverse, weights=(data.subset[test] == "warm"), minlength=len(users)) > 0
    rng = np.random.default_rng(seed)
    chosen = []
    for stratum in (has_warm, ~has_warm):
        members = np.flatnonzero(stratum)
        if not len(members):
            continue
        quota = int(np.ceil(sample_rows * counts[members].sum() / len(test)))
        order = members[rng.permutation(len(members))]
        taken = int(np.searchsorted(np.cumsum(counts[order]), quota)) + 1
        chosen.append(users[order[:taken]])
    chosen = np.concatenate(chosen)
    rows = test[np.isin(data.user[test], chosen)]
    info.update(rows=int(len(rows)), sampled=True,
                sample={"unit": "users", "users": int(len(chosen)), "of_users": int(len(users)),
                        "min_rows": int(sample_rows), "seed": seed,
                        "strata": "users with / without warm test rows, in proportion to their rows",
                        "warm_rows": int((data.subset[rows] == "warm").sum())})
    return rows, info
