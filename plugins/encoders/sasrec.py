"""SASRec: a causal self-attention encoder of the user's recent positive items.

Registration only: the torch model lives in ``sasrec_model`` and is imported by ``build``.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import EncoderSpec, hookimpl
from collm_bench.api.components import option


@dataclass(frozen=True)
class SASRecOptions:
    """SASRec on ML-1M: hidden 64, 2 blocks, 1 head, dropout 0.2, the last 25 positives
    (20 on Amazon-Book); lr 1e-2, wd 1e-2, batch 2048: the configuration of the authors'
    log behind the paper's 0.7078 (their script's wd 1e-4 is not it).
    On ML-1M (seed 0, valid AUC) lr 1e-3 gave 0.6845 and wd 1e-3 0.678 (overfits by epoch 2),
    against 0.6885 here; valid AUC plateaus from epoch ~10 (Xavier init)."""

    dim: int = option(64, ge=1, help="hidden size (a multiple of heads)")
    blocks: int = option(2, ge=1, help="self-attention blocks")
    heads: int = option(1, ge=1, help="attention heads")
    dropout: float = option(0.2, ge=0, lt=1, help="dropout rate")
    lr: float = 1e-2
    weight_decay: float = 1e-2
    batch_size: int = 2048
    max_epochs: int = 100
    patience: int = 20
    history_len: int = 25

    def __post_init__(self) -> None:
        if self.heads >= 1 and self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")


def build(*, n_users: int, n_items: int, history_len: int, **model_options):
    from collm_bench_plugins.encoders.sasrec_model import SASRec

    return SASRec(n_users, n_items, history_len, **model_options)


@hookimpl
def register_encoders(register):
    register(EncoderSpec(
        name="sasrec", build=build, options=SASRecOptions,
        description="SASRec: causal self-attention over recent positives; last state . item embedding",
        model_fields=("dim", "blocks", "heads", "dropout"), uses_history=True,
    ))
