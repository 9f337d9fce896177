"""Conformance kit for plugin authors: tiny data and checks for components.

Use from tests (``from collm_bench.testing import check_encoder, tiny_dataset``) or through
the pytest fixtures of ``collm_bench.testing.pytest_plugin`` (loaded automatically once
collm-bench is installed): ``collm_tiny_dataset``. ``check_dataset`` and ``check_method``
(in ``collm_bench.testing.checks``) run a dataset or method plugin through the harness.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from collm_bench.api.components import EncoderSpec
from collm_bench.data.format import PreparedDataset, load_prepared, write_prepared
from collm_bench.data.history import derive_histories

TRAIN_OPTIONS = ("lr", "weight_decay", "batch_size", "max_epochs", "patience")


def tiny_frames(n_users: int = 12, n_items: int = 20, rows_per_user: int = 12, seed: int = 0):
    """A tiny interaction table with a planted preference (users like items of their parity)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 1), size=rows_per_user, replace=False)
        for k, i in enumerate(items):
            liked = (u % 2 == i % 2) if rng.random() > 0.15 else (u % 2 != i % 2)
            rows.append((u, int(i), int(liked), 1_000 * u + 10 * k))
    frame = pd.DataFrame(rows, columns=["user", "item", "label", "timestamp"])
    pos = frame.groupby("user").cumcount() / rows_per_user
    frame["split"] = np.where(pos < 0.6, "train", np.where(pos < 0.8, "valid", "test"))
    hist = derive_histories(frame["user"].to_numpy(), frame["item"].to_numpy(),
                            frame["label"].to_numpy(), frame["timestamp"].to_numpy())
    frame["history"] = hist.as_strings()
    items = pd.DataFrame({"item": np.arange(1, n_items + 1),
                          "title": [f"Movie {i} ({1980 + i})" for i in range(1, n_items + 1)]})
    return frame, items


def tiny_dataset(target: str | Path, **kwargs: Any) -> PreparedDataset:
    """Write a tiny prepared dataset into ``target`` and load it back."""
    frame, items = tiny_frames(**kwargs)
    write_prepared(target, frame, items, name="tiny", protocol="collm_bench.testing tiny", item_noun="movie")
    return load_prepared(target)


def check_encoder(spec: EncoderSpec, *, steps: int = 30, seed: int = 0) -> None:
    """Assert that an encoder follows the contract of ``collm_bench.encoders.training``.

    Builds it on tiny data with its default options and checks option fields, output shapes,
    representation shapes, that training lowers the loss, and determinism under a seed.
    """
    import tempfile

    import torch

    from collm_bench.encoders.training import build_encoder, make_batch, seed_everything
    from collm_bench.data.interactions import build_interactions

    assert dataclasses.is_dataclass(spec.options), "EncoderSpec.options must be a dataclass"
    opts = spec.options()
    names = {f.name for f in dataclasses.fields(opts)}
    missing = [n for n in TRAIN_OPTIONS if n not in names]
    assert not missing, f"options lack training fields {missing}"
    assert set(spec.model_fields) <= names, "model_fields must name option fields"
    with tempfile.TemporaryDirectory() as tmp:
        data = build_interactions(tiny_dataset(tmp))
    history_len = int(getattr(opts, "history_len", 0) or 0)
    if spec.uses_history:
        assert history_len > 0, "an encoder with uses_history needs history_len > 0"
    train = data.rows("train")

    def build() -> Any:
        seed_everything(seed)
        return build_encoder(spec, opts, data)

    model = build()
    batch = make_batch(data, train[:8], history_len)
    logits = model(batch)
    assert tuple(logits.shape) == (8,), f"forward must return [B] logits, got {tuple(logits.shape)}"
    user_rep, item_rep = model.representations(batch)
    assert tuple(user_rep.shape) == (8, model.rep_dim), "user representation must be [B, rep_dim]"
    assert tuple(item_rep.shape) == (8, model.rep_dim), "item representation must be [B, rep_dim]"

    def train_losses(m) -> list[float]:
        seed_everything(seed)  # dropout draws from the global RNG
        optimizer = torch.optim.Adam(m.parameters(), lr=1e-2)
        labels = torch.from_numpy(data.label[train].astype(np.float32))
        full = make_batch(data, train, history_len)
        losses = []
        m.train()
        for _ in range(steps):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(m(full), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    first = train_losses(model)
    assert first[-1] < first[0], f"training did not lower the loss ({first[0]:.4f} -> {first[-1]:.4f})"
    again = train_losses(build())
    assert np.allclose(first, again), "the same seed must give the same training losses"


def shared_dataset_dir(name: str = "ml-1m-collm") -> Path:
    """Where reference data kept outside the project lives: ``$COLLM_BENCH_SHARED_DATA/<name>``,
    else ``<checkout>/../shared/data/<name>`` (may not exist: tests using it skip)."""
    import os

    root = os.environ.get("COLLM_BENCH_SHARED_DATA")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared" / "data"
    return base / name


from collm_bench.api.registry import load_registry  # noqa: E402  (re-exported: a registry with your plugin)
from collm_bench.testing.checks import check_dataset, check_method  # noqa: E402  (re-exported)

__all__ = ["check_dataset", "check_encoder", "check_method", "load_registry", "shared_dataset_dir", "tiny_dataset",
           "tiny_frames"]
