"""The DIN model (Zhou et al., 2018) on user id, target item and history.

Three fields of ``dim // 3`` each: the target item's embedding, the attention-pooled history
and the user's embedding. Attention weights come from an MLP on
``[target, item, target - item, target * item]`` with Dice activations and are not
normalised (as in DIN); padded history positions (item 0) are dropped before the attention
MLP, so they change neither the output nor Dice's batch statistics. The prediction MLP
(Dice, dropout) ends in one unnormalised logit: training applies BCE with logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dice(nn.Module):
    """Dice: ``p * x + (1 - p) * alpha * x`` with ``p = sigmoid(batchnorm(x))`` (no affine)."""

    def __init__(self, features: int, eps: float = 1e-8):
        super().__init__()
        self.norm = nn.BatchNorm1d(features, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 1:
            normed = self.norm(x)
        else:  # eval, or a batch of one whose variance is undefined: running statistics
            normed = F.batch_norm(x, self.norm.running_mean, self.norm.running_var, training=False, eps=self.norm.eps)
        p = torch.sigmoid(normed)
        return x * (p + (1 - p) * self.alpha)


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of ``sizes``, Dice (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(Dice(sizes[i + 1]))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DIN(nn.Module):
    def __init__(self, n_users: int, n_items: int, *, dim: int = 256, dropout: float = 0.2,
                 attention_hidden=(64, 16), mlp_hidden=(200, 80), **_):
        super().__init__()
        field = dim // 3
        if field < 1:
            raise ValueError(f"DIN needs dim >= 3, got {dim}")
        self.field = field
        self.rep_dim = 3 * field
        self.user_emb = nn.Embedding(n_users, field)
        self.item_emb = nn.Embedding(n_items, field, padding_idx=0)
        self.attention = mlp([4 * field, *attention_hidden, 1])
        self.mlp = mlp([3 * field, *mlp_hidden, 1], dropout)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.xavier_normal_(module.weight)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def pooled_history(self, target: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """Attention-weighted sum of the non-padded history embeddings, ``[B, field]``."""
        rows, cols = (history != 0).nonzero(as_tuple=True)
        pooled = target.new_zeros(target.shape)
        if len(rows) == 0:
            return pooled
        keys = self.item_emb(history[rows, cols])
        query = target[rows]
        weights = self.attention(torch.cat([query, keys, query - keys, query * keys], dim=-1))
        return pooled.index_add(0, rows, weights * keys)

    def representations(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        target = self.item_emb(batch["item"])
        user = torch.cat([target, self.pooled_history(target, batch["history"]), self.user_emb(batch["user"])], dim=-1)
        return user, target.repeat(1, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        user, _ = self.representations(batch)
        return self.mlp(user).squeeze(-1)
