"""What a collaborative encoder is, and the loop that pretrains one.

An encoder is a ``torch.nn.Module`` with

- ``forward(batch) -> logits`` of shape ``[B]`` for (user, item) pairs,
- ``representations(batch) -> (user_rep, item_rep)``, each ``[B, rep_dim]``: the inputs of
  CoLLM's CIE module,
- an int attribute ``rep_dim``.

``batch`` is a dict of ``LongTensor``: ``user`` and ``item`` (dense indices, ``[B]``) and,
for encoders with ``uses_history``, ``history`` (``[B, L]``, left-padded with 0, most recent
item last). Training is pointwise BCE on the explicit labels with Adam and L2 weight decay,
early-stopped on validation AUC; the best state is kept.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from collm_bench.data.interactions import Interactions
from collm_bench.records.metrics import auc
from collm_bench.progress import bar, detail


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_auc: float
    epochs_run: int
    valid_curve: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0


def build_encoder(spec, options: Any, data: Interactions):
    """Build ``spec``'s model for ``data`` from an options dataclass instance.

    Every build receives the sizes, ``history_len`` and the train split's arrays
    (``train_users``, ``train_items``, ``train_labels``, dense indices), plus the options
    named in ``spec.model_fields``.
    """
    train = data.rows("train")
    model_options = {name: getattr(options, name) for name in spec.model_fields}
    return spec.build(
        n_users=data.n_users, n_items=data.n_items, history_len=getattr(options, "history_len", 0),
        train_users=data.user[train], train_items=data.item[train], train_labels=data.label[train],
        **model_options,
    )


def training_options(spec, options: Any) -> dict[str, Any]:
    """The options of ``spec`` that are not model fields: the keyword arguments of ``fit``."""
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
            if f.name not in spec.model_fields}


def make_batch(data: Interactions, rows: np.ndarray, history_len: int) -> dict[str, Any]:
    import torch

    batch = {
        "user": torch.from_numpy(data.user[rows].astype(np.int64)),
        "item": torch.from_numpy(data.item[rows].astype(np.int64)),
    }
    if history_len:
        batch["history"] = torch.from_numpy(data.history_matrix(rows, history_len).astype(np.int64))
    return batch


def predict(model, data: Interactions, rows: np.ndarray, *, history_len: int, batch_size: int = 4096) -> np.ndarray:
    """Logits for ``rows``, in order."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            out.append(model(make_batch(data, part, history_len)).float().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def fit(
    model,
    data: Interactions,
    *,
    lr: float,
    weight_decay: float,
    batch_size: int,
    max_epochs: int,
    patience: int,
    history_len: int = 0,
    seed: int = 0,
    valid_rows: np.ndarray | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Pretrain ``model`` on the train rows; early stopping on the AUC of ``valid_rows``
    (all valid rows by default). The model ends in its best state."""
    import torch

    train_rows = data.rows("train")
    valid_rows = data.rows("valid") if valid_rows is None else valid_rows
    labels = torch.from_numpy(data.label.astype(np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)

    curve: list[float] = []
    shown = bar(max_epochs, "encoder training", unit="epoch") if progress else None
    with shown if shown is not None else contextlib.nullcontext():
        epoch, best_state, best_auc, best_epoch, seen, train_time = _epochs(
            model, data, optimizer, loss_fn, labels, rng, train_rows, valid_rows, curve, shown, batch_size=batch_size,
            max_epochs=max_epochs, patience=patience, history_len=history_len)
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(
        best_epoch=best_epoch, best_valid_auc=float(best_auc), epochs_run=epoch, valid_curve=curve,
        train_seconds=train_time, samples_per_second=seen / train_time if train_time else 0.0,
    )


def _epochs(model, data, optimizer, loss_fn, labels, rng, train_rows, valid_rows, curve, shown, *, batch_size: int,
            max_epochs: int, patience: int, history_len: int):
    """The epochs of ``fit``; returns (epochs run, best state, its AUC and epoch, rows seen, train seconds)."""
    best_auc, best_epoch, best_state = -math.inf, -1, None
    seen, train_time, epoch = 0, 0.0, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        started = time.perf_counter()
        order = rng.permutation(train_rows)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            logits = model(make_batch(data, rows, history_len))
            loss = loss_fn(logits, labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(rows)
        train_time += time.perf_counter() - started
        valid_auc = auc(data.label[valid_rows], predict(model, data, valid_rows, history_len=history_len))
        curve.append(valid_auc)
        if valid_auc > best_auc:
            best_auc, best_epoch = valid_auc, epoch
            best_state = copy.deepcopy(model.state_dict())
        if shown is not None:
            shown.update()
            shown.note(loss=round(loss.item(), 4), valid_auc=valid_auc, best=f"{best_auc:.4f} @ {best_epoch}")
        detail(f"epoch {epoch}: loss {loss.item():.4f} valid AUC {valid_auc:.4f} (best {best_auc:.4f} @ {best_epoch})")
        if epoch - best_epoch >= patience:
            break
    return epoch, best_state, best_auc, best_epoch, seen, train_time


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
