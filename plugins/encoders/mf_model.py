"""The MF model: raw embeddings, dot product, no biases (as the CoLLM code)."""
from __future__ import annotations

import torch
from torch import nn


class MatrixFactorization(nn.Module):
    def __init__(self, n_users: int, n_items: int, *, dim: int = 256, init_std: float = 0.1, **_):
        super().__init__()
        self.rep_dim = dim
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)

    def representations(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_emb(batch["user"]), self.item_emb(batch["item"])

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        user, item = self.representations(batch)
        return (user * item).sum(-1)
