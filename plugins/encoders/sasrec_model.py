"""The SASRec model (Kang & McAuley, 2018), scored pointwise.

The history (``[B, L]``, left-padded with 0, most recent last) is embedded (item embedding
scaled by sqrt(d), plus a learned position embedding counted from the most recent item, so
that the amount of left padding changes nothing), then passes ``blocks`` blocks of causal
self-attention (``scaled_dot_product_attention``; padded keys are masked) and a point-wise
feed-forward layer, each with layer norm, residual and dropout; padded positions are zeroed
after every block. The score is the last position's output . the target item's embedding.
Matrices (embeddings included) start Xavier-normal.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` with the mask drawn by ``rand`` (2x faster than ``bernoulli_`` on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * ((torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.attn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-8)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), Dropout(dropout), nn.Linear(dim, dim), Dropout(dropout),
        )

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        return x.view(b, length, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, queries: int) -> torch.Tensor:
        """``x``: ``[B, L, d]``; ``mask``: ``[B, 1, queries, L]``, True where attention is
        allowed; only the last ``queries`` positions are computed (and returned)."""
        q = self.attn_norm(x[:, -queries:])
        k, v = self.key_value(x).chunk(2, dim=-1)
        attended = F.scaled_dot_product_attention(
            self._split(self.query(q)), self._split(k), self._split(v), attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        b, _, length, dh = attended.shape
        x = q + self.out(attended.transpose(1, 2).reshape(b, length, self.heads * dh))
        x = self.ffn_norm(x)
        return x + self.ffn(x)


class SASRec(nn.Module):
    def __init__(self, n_users: int, n_items: int, history_len: int, *, dim: int = 64, blocks: int = 2,
                 heads: int = 1, dropout: float = 0.2, **_):
        super().__init__()
        if history_len < 1:
            raise ValueError("SASRec needs history_len >= 1")
        self.rep_dim, self.max_len = dim, history_len
        self.item_emb = nn.Embedding(n_items, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(history_len, dim)
        self.emb_dropout = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(dim, eps=1e-8)
        # Xavier-normal matrices (as the common PyTorch SASRec): with PyTorch's N(0, 1)
        # embeddings the first logits are ~8 in size and valid AUC needs ~40 epochs, not ~10,
        # to reach the same plateau on ML-1M.
        for parameter in self.parameters():
            if parameter.dim() >= 2:
                nn.init.xavier_normal_(parameter)

    def sequence_output(self, history: torch.Tensor, last_only: bool = True) -> torch.Tensor:
        """Outputs ``[B, L, d]`` at every history position, or ``[B, d]`` at the last one
        (``last_only``: the last block then computes that position only)."""
        history = history[:, -self.max_len:]
        length = history.shape[1]
        valid = history != 0
        # Position 0 is the most recent item.
        positions = torch.arange(length - 1, -1, -1, device=history.device)
        x = self.item_emb(history) * math.sqrt(self.rep_dim) + self.pos_emb(positions)
        x = self.emb_dropout(x) * valid.unsqueeze(-1)
        causal = torch.ones(length, length, dtype=torch.bool, device=history.device).tril()
        # Padded keys are masked; every position may still attend to itself, so that a
        # padded query (whose output is zeroed anyway) never sees an empty row.
        mask = (causal & valid[:, None, :]) | torch.eye(length, dtype=torch.bool, device=history.device)
        mask = mask.unsqueeze(1)  # [B, 1, L, L]
        for index, block in enumerate(self.blocks):
            queries = 1 if last_only and index == len(self.blocks) - 1 else length
            x = block(x, mask[:, :, -queries:], queries) * valid[:, -queries:].unsqueeze(-1)
        x = self.final_norm(x)
        return x[:, -1] if last_only else x

    def representations(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sequence_output(batch["history"]), self.item_emb(batch["item"])

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        user, item = self.representations(batch)
        return (user * item).sum(-1)
