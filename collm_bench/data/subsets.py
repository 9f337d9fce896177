"""Warm/cold marking (paper, Section V-B2)."""
from __future__ import annotations

import numpy as np

WARM_MIN_TRAIN_ROWS = 3


def warm_mask(user: np.ndarray, item: np.ndarray, train_user: np.ndarray, train_item: np.ndarray,
              min_rows: int = WARM_MIN_TRAIN_ROWS) -> np.ndarray:
    """True where the row's user and its item each appear at least ``min_rows`` times in train."""
    return (_count_in(user, train_user) >= min_rows) & (_count_in(item, train_item) >= min_rows)


def _count_in(values: np.ndarray, population: np.ndarray) -> np.ndarray:
    uniq, counts = np.unique(np.asarray(population), return_counts=True)
    values = np.asarray(values)
    pos = np.searchsorted(uniq, values)
    pos = np.clip(pos, 0, max(len(uniq) - 1, 0))
    found = (uniq[pos] == values) if len(uniq) else np.zeros(len(values), dtype=bool)
    return np.where(found, counts[pos] if len(uniq) else 0, 0)


def subset_labels(user, item, train_user, train_item) -> np.ndarray:
    """'warm' / 'cold' per row."""
    return np.where(warm_mask(user, item, train_user, train_item), "warm", "cold")
