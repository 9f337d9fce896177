"""LightGCN: embeddings propagated over the user-item graph of positive train interactions.

Registration only: the torch model lives in ``lightgcn_model`` and is imported by ``build``.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import EncoderSpec, hookimpl
from collm_bench.api.components import option


@dataclass(frozen=True)
class LightGCNOptions:
    """LightGCN on ML-1M as in the authors' script: d=64, 2 layers, lr 1e-2, wd 1e-4,
    batch 1024, N(0, 0.1) init. Test AUC varies with the seed (0.58-0.60): report several."""

    dim: int = option(64, ge=1, help="embedding size")
    layers: int = option(2, ge=0, help="propagation layers")
    init_std: float = option(0.1, gt=0, help="std of the normal initialisation")
    lr: float = 1e-2
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 300
    patience: int = 50
    history_len: int = 0


def build(*, n_users: int, n_items: int, train_users, train_items, train_labels,
          history_len: int = 0, **model_options):
    from collm_bench_plugins.encoders.lightgcn_model import LightGCN

    return LightGCN(n_users, n_items, train_users=train_users, train_items=train_items,
                    train_labels=train_labels, **model_options)


@hookimpl
def register_encoders(register):
    register(EncoderSpec(
        name="lightgcn", build=build, options=LightGCNOptions,
        description="LightGCN: mean of 0..L propagations over the positive train graph, dot product",
        model_fields=("dim", "layers", "init_std"), uses_history=False,
    ))
