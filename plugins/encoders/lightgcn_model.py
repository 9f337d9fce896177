"""The LightGCN model.

The graph holds the positive train interactions only (label 1), each (user, item) pair once,
with symmetric normalisation ``D^-1/2 A D^-1/2``; the representation is the mean of the
embeddings after 0..L propagations. Training propagates the whole graph once per forward
pass (one per training step, with sparse matrix products); in eval mode without gradients
the propagated tables are computed once and reused until a parameter changes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def normalized_adjacency(n_users: int, n_items: int, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
    """Symmetrically normalised adjacency of the bipartite graph, users first then items."""
    pairs = np.unique(np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)]), axis=1)
    u, i = pairs[0], pairs[1] + n_users
    n = n_users + n_items
    degree = np.bincount(np.concatenate([u, i]), minlength=n).astype(np.float64)
    inv_sqrt = np.zeros(n)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    rows = np.concatenate([u, i])
    cols = np.concatenate([i, u])
    values = (inv_sqrt[rows] * inv_sqrt[cols]).astype(np.float32)
    adj = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values), (n, n),
                                  check_invariants=True)
    return adj.coalesce()


class LightGCN(nn.Module):
    def __init__(self, n_users: int, n_items: int, *, train_users, train_items, train_labels,
                 dim: int = 64, layers: int = 2, init_std: float = 0.1, **_):
        super().__init__()
        self.rep_dim = dim
        self.n_users, self.n_items, self.layers = n_users, n_items, layers
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        positive = np.asarray(train_labels) == 1
        adj = normalized_adjacency(n_users, n_items, np.asarray(train_users)[positive], np.asarray(train_items)[positive])
        # Derived from the data, not learned: kept out of the state dict.
        self.register_buffer("adjacency", adj, persistent=False)
        self.propagations = 0  # how many times the whole graph was propagated (for tests and logs)
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item tables after propagation: mean over layers 0..L."""
        self.propagations += 1
        x = torch.cat([self.user_emb.weight, self.item_emb.weight])
        total = x
        for _ in range(self.layers):
            x = torch.sparse.mm(self.adjacency, x)
            total = total + x
        out = total / (self.layers + 1)
        return out[:self.n_users], out[self.n_users:]

    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagated tables; cached while in eval mode without gradients to compute."""
        weights = (self.user_emb.weight, self.item_emb.weight)
        if self.training or (torch.is_grad_enabled() and any(w.requires_grad for w in weights)):
            self._cache = None
            return self.propagate()
        # Any in-place change (optimizer step, load_state_dict) bumps a tensor's version.
        key = tuple((w.data_ptr(), w._version) for w in weights)
        if self._cache is None or self._cache[0] != key:
            users, items = self.propagate()
            self._cache = (key, users, items)
        return self._cache[1], self._cache[2]

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def representations(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.tables()
        return users[batch["user"]], items[batch["item"]]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        user, item = self.representations(batch)
        return (user * item).sum(-1)
