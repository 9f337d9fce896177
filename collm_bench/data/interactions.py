"""A prepared dataset turned into the integer arrays models train on.

User and item ids are mapped to dense indices 1..N (0 is padding); the original ids are
kept for predictions. Histories follow the rule of ``collm_bench.data.history``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collm_bench.data.format import PreparedDataset
from collm_bench.data.history import Histories, derive_histories
from collm_bench.data.subsets import subset_labels


@dataclass
class Interactions:
    """Every row of a dataset as arrays in file order, plus the id maps."""

    user_id: np.ndarray      # original ids
    item_id: np.ndarray
    user: np.ndarray         # dense indices, 1..n_users
    item: np.ndarray         # dense indices, 1..n_items
    label: np.ndarray
    split: np.ndarray        # 'train' / 'valid' / 'test'
    valid_small: np.ndarray  # bool
    subset: np.ndarray       # 'warm' / 'cold' (meaningful for valid and test rows)
    histories: Histories     # in dense item indices
    n_users: int             # including padding index 0
    n_items: int
    item_ids: np.ndarray     # dense index -> original item id (index 0 unused)

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def history_matrix(self, rows: np.ndarray, length: int) -> np.ndarray:
        """The last ``length`` positive items before each row, left-padded with 0."""
        return self.histories.last(length, pad=0, rows=rows)


def build_interactions(dataset: PreparedDataset) -> Interactions:
    frame = dataset.interactions
    user_id = frame["user"].to_numpy()
    item_id = frame["item"].to_numpy()
    users = np.unique(user_id)
    items = np.unique(np.concatenate([dataset.items["item"].to_numpy(), item_id]))
    user = np.searchsorted(users, user_id) + 1
    item = np.searchsorted(items, item_id) + 1
    label = frame["label"].to_numpy().astype(np.int64)
    split = frame["split"].to_numpy().astype(str)
    histories = derive_histories(user, item, label, frame["timestamp"].to_numpy())
    train = split == "train"
    valid_small = (frame["valid_small"].to_numpy() == 1) if "valid_small" in frame else (split == "valid")
    return Interactions(
        user_id=user_id, item_id=item_id, user=user, item=item, label=label, split=split,
        valid_small=valid_small & (split == "valid"),
        subset=subset_labels(user, item, user[train], item[train]),
        histories=histories, n_users=len(users) + 1, n_items=len(items) + 1,
        item_ids=np.concatenate([[0], items]),
    )
