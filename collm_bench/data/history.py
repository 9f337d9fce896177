"""User histories by the rule of docs/data-format.md, vectorised.

Sort all rows of all splits by (user, timestamp), stable over file order; a row's history
is the items that user labelled 1 in earlier rows, oldest first. The result is kept in a
compact form (one flat array of positives plus per-row [start, end) offsets), so that
4 million rows never become 4 million Python lists.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Histories:
    """Row ``r``'s history is ``positives[start[r]:end[r]]`` (rows in the input's order)."""

    positives: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def row(self, r: int) -> np.ndarray:
        return self.positives[self.start[r]:self.end[r]]

    def lengths(self) -> np.ndarray:
        return self.end - self.start

    def last(self, n: int, pad: int = 0, rows: np.ndarray | None = None) -> np.ndarray:
        """The last ``n`` history items of each row, left-padded with ``pad``: shape (rows, n).

        The most recent item sits in the last column.
        """
        start = self.start if rows is None else self.start[rows]
        end = self.end if rows is None else self.end[rows]
        out = np.full((len(start), n), pad, dtype=self.positives.dtype if len(self.positives) else np.int64)
        if not len(self.positives):
            return out
        offsets = np.arange(n)[None, :] - n
        # Chunks bound the temporaries (index and mask arrays) at millions of rows.
        for lo in range(0, len(start), 1 << 18):
            s, e = start[lo:lo + (1 << 18), None], end[lo:lo + (1 << 18), None]
            idx = e + offsets
            valid = idx >= s
            out[lo:lo + len(s)][valid] = self.positives[idx[valid]]
        return out

    def as_strings(self) -> list[str]:
        """Space-separated histories, as in the prepared format's ``history`` column."""
        items = self.positives.astype(str)
        return [" ".join(items[s:e]) for s, e in zip(self.start.tolist(), self.end.tolist())]


def derive_histories(user: np.ndarray, item: np.ndarray, label: np.ndarray, timestamp: np.ndarray) -> Histories:
    """Histories of every row; inputs are equal-length arrays in file order."""
    user = np.asarray(user)
    n = len(user)
    # lexsort is stable and sorts by the last key first: user, then timestamp, then file order.
    order = np.lexsort((np.asarray(timestamp), user))
    sorted_user = user[order]
    positive = np.asarray(label)[order] == 1
    # Number of positives (in sorted order) strictly before each sorted row.
    before = np.cumsum(positive) - positive
    first_of_user = np.ones(n, dtype=bool)
    first_of_user[1:] = sorted_user[1:] != sorted_user[:-1]
    group = np.cumsum(first_of_user) - 1
    start_sorted = before[first_of_user][group]
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    start[order] = start_sorted
    end[order] = before
    positives = np.asarray(item)[order][positive]
    return Histories(positives=positives, start=start, end=end)


def parse_history_column(values) -> list[list[int]]:
    """The prepared ``history`` column (space-separated ids) as lists of ints."""
    return [[int(v) for v in str(s).split()] if isinstance(s, str) and s else [] for s in values]
