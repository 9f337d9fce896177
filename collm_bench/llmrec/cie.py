"""CoLLM's collaborative information encoding: the MLP that maps an encoder's representations
into the LLM's token-embedding space, and the embedder that fills a batch's ID slots with it."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from collm_bench.encoders.training import make_batch


class CIE(nn.Module):
    """``Linear(d1, f*d1) -> ReLU -> Linear(f*d1, d_llm)``, one MLP shared by users and items
    (docs/protocol.md, "CIE and the two steps"); ``layer_norm_input``: each input embedding
    layer-normed first (no parameters), making the MLP blind to its scale."""

    def __init__(self, d_in: int, d_llm: int, factor: int = 10, layer_norm_input: bool = False) -> None:
        super().__init__()
        self.layer_norm_input = layer_norm_input
        self.net = nn.Sequential(nn.Linear(d_in, factor * d_in), nn.ReLU(), nn.Linear(factor * d_in, d_llm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_norm_input:
            x = F.layer_norm(x, x.shape[-1:])
        return self.net(x)


def batch_rows(batch: dict[str, Any]) -> np.ndarray:
    """The dataset rows of a prompt batch (``data_rows``), as a numpy array."""
    rows = batch["data_rows"]
    return rows.cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)


def id_embedder(encoder: nn.Module, cie: nn.Module, data: Any, history_len: int) -> Callable[[dict], torch.Tensor]:
    """``batch -> [B, 2, d_llm]``: the CIE outputs for the batch's user and item (user first)."""

    def embed(batch: dict[str, Any]) -> torch.Tensor:
        device = next(cie.parameters()).device
        enc_batch = {k: v.to(device) for k, v in make_batch(data, batch_rows(batch), history_len).items()}
        user, item = encoder.representations(enc_batch)
        return torch.stack([cie(user.float()), cie(item.float())], dim=1)

    return embed
