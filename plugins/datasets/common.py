"""Helpers shared by the built-in dataset plugins (light to import: numpy only).

The layout every built-in dataset writes (the CoLLM release's): the train rows, then the
valid rows, then the test rows, each block sorted by (user, timestamp), stable over the
order the rows came in; histories by ``collm_bench.data.history``; ``valid_small`` a seeded
sample of the valid block drawn as ``DataFrame.sample(frac=..., random_state=seed)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from collm_bench.data.datasets import data_dir
from collm_bench.errors import UserError
from collm_bench.data.history import derive_histories

if TYPE_CHECKING:
    import pandas as pd

SPLIT_ORDER = {"train": 0, "valid": 1, "test": 2}
VALID_SMALL_SEED = 2023


def raw_dir(name: str) -> Path:
    """Where a dataset's raw downloads are cached: ``<data dir>/raw/<name>``."""
    return data_dir() / "raw" / name


def month_index(timestamp: np.ndarray) -> np.ndarray:
    """Months since 1970-01 (UTC) of unix timestamps in seconds (see ``month_number``)."""
    seconds = np.asarray(timestamp).astype("int64")
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype("int64")


def month_number(year: int, month: int) -> int:
    """The ``month_index`` of a calendar month (``month`` 1-12)."""
    return (year - 1970) * 12 + month - 1


def sample_flags(n: int, frac: float, seed: int = VALID_SMALL_SEED) -> np.ndarray:
    """0/1 flags of ``pandas.DataFrame.sample(frac=frac, random_state=seed)`` over ``n`` rows."""
    import pandas as pd

    flags = np.zeros(n, dtype=np.int8)
    picked = pd.RangeIndex(n).to_series().sample(frac=frac, random_state=seed).to_numpy()
    flags[picked] = 1
    return flags


def canonical_layout(frame: "pd.DataFrame", *, valid_small_frac: float, seed: int = VALID_SMALL_SEED,
                     history: bool = True, max_history_items: int | None = None) -> "pd.DataFrame":
    """Order rows as the CoLLM release does and add ``history`` and ``valid_small``.

    ``frame`` has ``user, item, label, timestamp, split`` (and optionally ``rating``), rows
    in their source order, which breaks timestamp ties (stable sorts throughout). The
    ``history`` column is left out when ``history`` is false or when all histories together
    hold more than ``max_history_items`` ids (readers derive them anyway).
    """
    split_rank = frame["split"].map(SPLIT_ORDER).to_numpy()
    if np.isnan(split_rank.astype(float)).any():
        raise ValueError("split must be train, valid or test")
    order = np.lexsort((frame["timestamp"].to_numpy(), frame["user"].to_numpy(), split_rank))
    out = frame.iloc[order].reset_index(drop=True)
    hist = derive_histories(out["user"].to_numpy(), out["item"].to_numpy(),
                            out["label"].to_numpy(), out["timestamp"].to_numpy())
    if history and (max_history_items is None or int(hist.lengths().sum()) <= max_history_items):
        out["history"] = hist.as_strings()
    valid = np.flatnonzero(out["split"].to_numpy() == "valid")
    small = np.zeros(len(out), dtype=np.int8)
    small[valid] = sample_flags(len(valid), valid_small_frac, seed)
    out["valid_small"] = small
    return out


def first_appearance_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids 1..N in order of first appearance: (new id per value, original value per new id - 1)."""
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64) + 1, np.asarray(uniques)


def source_options(text: str | None, *, owner: str) -> dict[str, str]:
    """``"rows=5000,seed=1"`` -> ``{"rows": "5000", "seed": "1"}``, for
    ``collm_bench.api.components.parse_options`` to check and convert."""
    options: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise UserError(f"{owner}: option {part!r} must look like key=value")
        options[key.strip()] = value.strip()
    return options