"""The torch module of the popularity encoder (imported only when a model is built)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class PopularityEncoder(nn.Module):
    rep_dim = 2

    def __init__(self, n_users: int, n_items: int, *, train_items, train_labels, smoothing: float) -> None:
        super().__init__()
        counts = np.bincount(train_items, minlength=n_items).astype(np.float32)
        positives = np.bincount(train_items, weights=train_labels, minlength=n_items).astype(np.float32)
        prior = float(np.mean(train_labels)) if len(train_labels) else 0.5
        rate = (positives + smoothing * prior) / (counts + smoothing)
        features = np.stack([np.log1p(counts), rate], axis=1)
        features = (features - features.mean(0)) / (features.std(0) + 1e-6)
        # Fixed statistics of the train split: a buffer, saved with the model, never trained.
        self.register_buffer("item_features", torch.from_numpy(features.astype(np.float32)))
        self.user_weights = nn.Embedding(n_users, self.rep_dim)
        nn.init.constant_(self.user_weights.weight, 0.5)
        self.bias = nn.Parameter(torch.zeros(()))

    def representations(self, batch):
        return self.user_weights(batch["user"]), self.item_features[batch["item"]]

    def forward(self, batch):
        user, item = self.representations(batch)
        return (user * item).sum(-1) + self.bias
