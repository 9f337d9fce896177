"""An item-popularity encoder for collm-bench: the example third-party plugin.

Each item is described by two fixed features computed from the train split (log number of
train rows, smoothed train positive rate); each user learns how much they follow those
features. Score = <user weights, item features> + bias. It is a sensible floor for the
leaderboard and, through ``representations``, a valid input to CoLLM's CIE module.

This module is what the entry point names, so it stays light: torch is imported only when a
model is built.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import EncoderSpec, hookimpl

__version__ = "0.1.0"


@dataclass(frozen=True)
class PopularityOptions:
    """Options with their defaults; `collm-bench run --set lr=0.01` overrides one."""

    smoothing: float = 10.0   # pseudo-count pulling rare items' positive rate to the global rate
    lr: float = 1e-2
    weight_decay: float = 1e-5
    batch_size: int = 1024
    max_epochs: int = 50
    patience: int = 5
    history_len: int = 0      # this encoder does not read histories


def build(*, n_users: int, n_items: int, train_items, train_labels, smoothing: float, **_):
    from collm_bench_popularity_model import PopularityEncoder

    return PopularityEncoder(n_users, n_items, train_items=train_items, train_labels=train_labels,
                             smoothing=smoothing)


@hookimpl
def register_encoders(register):
    register(EncoderSpec(
        name="popularity",
        build=build,
        options=PopularityOptions,
        description="Item popularity with per-user sensitivity (example plugin)",
        model_fields=("smoothing",),
        uses_history=False,
    ))
