"""What a method (a leaderboard row) receives and returns, and the shared evaluation sample.

``MethodSpec.run(context) -> MethodOutput``. The runner resolves and validates every name
and option before calling it, picks the evaluation rows (the same for every method on a
dataset), and turns the output into predictions, metrics and a run record.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from collm_bench.data.format import PreparedDataset
from collm_bench.data.interactions import Interactions
from collm_bench.cache.stages import StageCache
from collm_bench.errors import UserError

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
    """The test rows to score: all of them, or ``sampled_rows``' seeded sample of about
    ``sample_rows`` rows drawn within every test user (docs/protocol.md, "The test sample"). The
    sample depends only on the dataset, never on the method or the run's seed, so every method
    scores the same rows. A sample with rows of one label only (a few rows asked of a small
    split) is refused: no AUC is defined on it."""
    test = data.rows("test")
    info: dict[str, Any] = {"split": "test", "rows": int(len(test)), "total_rows": int(len(test)),
                            "sampled": False}
    if sample_rows is None or sample_rows >= len(test):
        return test, info
    rows, sample = sampled_rows(data, test, sample_rows, seed)
    if len(np.unique(np.asarray(data.label[rows]) > 0)) < 2:
        raise UserError(f"a test sample of about {sample_rows} rows gives {len(rows)} rows, not rows of both "
                        f"labels: ask for more rows (--sample-test, --limit; {len(test)} test rows in all)")
    info.update(rows=int(len(rows)), sampled=True, sample=sample)
    return rows, info


def sampled_rows(data: Interactions, test: np.ndarray, sample_rows: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """About ``sample_rows`` of the ``test`` rows, drawn within each (user, label) cell, in file
    order, and what the run's config says of them.

    Every cell gives the same fraction f = sample_rows / test rows: its whole part taken at random
    and the rest by a coin of that probability, so that every row is in with probability f (AUC's
    pairs alike: an estimate of the whole split's AUC without a weighting) and every user with rows
    of both labels keeps, in expectation, both. Drawing whole users instead leaves few users (on
    ml-100k, 3,000 rows were 47 of 327 users), and a bootstrap over users then reads the spread
    between 47 people.

    The rows chosen are the sample's identity: their digest is in the run's config, hence in its
    run id, so this function is known by its output (``collm_bench.cache.identity.BY_OUTPUT``).
    """
    fraction = sample_rows / len(test)
    rng = np.random.default_rng(seed)
    cell = data.user[test].astype(np.int64) * 2 + (np.asarray(data.label[test]) > 0)
    shuffled = rng.permutation(len(test))                       # a random order within each cell
    by_cell = shuffled[np.argsort(cell[shuffled], kind="stable")]
    sorted_cells = cell[by_cell]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    sizes = np.diff(np.r_[starts, len(by_cell)])
    taken = np.floor(fraction * sizes).astype(np.int64)
    taken += rng.random(len(sizes)) < fraction * sizes - taken   # the fractional part, by a coin
    offset = np.arange(len(by_cell)) - np.repeat(starts, sizes)
    rows = test[np.sort(by_cell[offset < np.repeat(taken, sizes)])]
    users = np.unique(data.user[rows])
    warm = data.subset[rows] == "warm"
    return rows, {"unit": "rows", "within": "user and label", "requested_rows": int(sample_rows),
                  "fraction": round(fraction, 6), "seed": seed, "users": int(len(users)),
                  "of_users": int(len(np.unique(data.user[test]))), "warm_rows": int(warm.sum()),
                  "warm_users": int(len(np.unique(data.user[rows][warm]))),
                  "cold_users": int(len(np.unique(data.user[rows][~warm]))),
                  "rows_sha256": hashlib.sha256(np.ascontiguousarray(rows, dtype="<i8").tobytes()).hexdigest()}
