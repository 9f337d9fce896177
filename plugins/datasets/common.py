"""Helpers shared by the built-in dataset plugins (light to import: numpy only).

The layout every built-in dataset writes (the CoLLM release's): the train rows, then the
valid rows, then the test rows, each block sorted by (user, timestamp), stable over the
order the rows came in; histories by ``collm_bench.history``; ``valid_small`` a seeded
sample of the valid block drawn as ``DataFrame.sample(frac=..., random_state=seed)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from collm_bench.datasets import data_dir
from collm_bench.errors import UserError, did_you_mean
from collm_bench.history import derive_histories

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


def parse_options(text: str | None, defaults: dict[str, Any], *, owner: str) -> dict[str, Any]:
    """``"rows=5000,seed=1"`` -> a dict over ``defaults`` (values converted to their types)."""
    options = dict(defaults)
    if not text:
        return options
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise UserError(f"{owner}: option {part!r} must look like key=value "
                            f"(options: {', '.join(defaults)})")
        if key not in defaults:
            raise UserError(f"{owner}: unknown option {key!r}{did_you_mean(key, defaults)}; "
                            f"options: {', '.join(defaults)}")
        default = defaults[key]
        kind: Callable[[str], Any] = type(default) if default is not None else str
        try:
            if kind is bool:
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                options[key] = lowered in ("1", "true", "yes", "on")
            elif kind is int:
                options[key] = int(float(value)) if "e" in value.lower() else int(value.replace("_", ""))
            else:
                options[key] = kind(value.strip())
        except ValueError:
            raise UserError(f"{owner}: option {key!r} expects {kind.__name__}, got {value!r}") from None
    return options
