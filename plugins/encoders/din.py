"""DIN (Deep Interest Network): target-aware attention pooling of the user's recent positives.

Registration only: the torch model lives in ``din_model`` and is imported by ``build``.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import EncoderSpec, hookimpl
from collm_bench.api.components import option


@dataclass(frozen=True)
class DINOptions:
    """DIN on ML-1M: fields of dim // 3 (user, target item, pooled history), Dice
    activations, attention MLP [64, 16], MLP [200, 80, 1] with dropout, the last 25
    positives; lr 1e-3 (inside the paper's grid).

    Chosen on ML-1M valid AUC (seed 0, lr 1e-3): d=256 with wd 1e-3 0.7358; wd 1e-4 0.7306,
    wd 1e-2 0.7250, dropout 0.5 0.7270, d=64 0.7307, d=128 0.7268, d=64 + wd 1e-3 0.7267.
    The best epoch is 2-5, hence patience 10. ``dim`` is the representation size: three
    fields of ``dim // 3`` (255 for 256), as in the CoLLM code."""

    dim: int = option(256, ge=3, help="representation size: three fields of dim // 3")
    dropout: float = option(0.2, ge=0, lt=1, help="dropout rate of the MLP")
    attention_hidden: tuple[int, ...] = option((64, 16), ge=1, help="hidden sizes of the attention MLP")
    mlp_hidden: tuple[int, ...] = option((200, 80), ge=1, help="hidden sizes of the prediction MLP")
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int = 1024
    max_epochs: int = 100
    patience: int = 10
    history_len: int = 25


def build(*, n_users: int, n_items: int, history_len: int, **model_options):
    from collm_bench_plugins.encoders.din_model import DIN

    return DIN(n_users, n_items, **model_options)


@hookimpl
def register_encoders(register):
    register(EncoderSpec(
        name="din", build=build, options=DINOptions,
        description="DIN: target-aware attention over recent positives, Dice MLP on [item, history, user]",
        model_fields=("dim", "dropout", "attention_hidden", "mlp_hidden"), uses_history=True,
    ))
