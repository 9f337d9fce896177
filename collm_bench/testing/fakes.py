"""Fake components for tests: small, deterministic, registered like real plugins."""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench.api.components import EncoderSpec
from collm_bench.api.registry import hookimpl


@dataclass(frozen=True)
class DotOptions:
    dim: int = 4
    lr: float = 0.05
    weight_decay: float = 0.0
    batch_size: int = 32
    max_epochs: int = 5
    patience: int = 5
    history_len: int = 0


def _build_dot(*, n_users: int, n_items: int, dim: int, **_):
    import torch

    class DotEncoder(torch.nn.Module):
        rep_dim = dim

        def __init__(self) -> None:
            super().__init__()
            self.users = torch.nn.Embedding(n_users, dim)
            self.items = torch.nn.Embedding(n_items, dim)

        def representations(self, batch):
            return self.users(batch["user"]), self.items(batch["item"])

        def forward(self, batch):
            user, item = self.representations(batch)
            return (user * item).sum(-1)

    return DotEncoder()


def dot_encoder_spec(name: str = "dot") -> EncoderSpec:
    """A tiny dot-product encoder (MF without the paper's defaults), fast enough for any test."""
    return EncoderSpec(name=name, build=_build_dot, options=DotOptions,
                       description="dot-product encoder for tests", model_fields=("dim",))


class FakePlugin:
    """A plugin object registering the fake components; pass it to ``load_registry(extra=...)``."""

    @hookimpl
    def register_encoders(self, register) -> None:
        register(dot_encoder_spec())
