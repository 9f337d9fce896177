"""CTRL's three cached stages (the ``ctrl`` module docstring says what each does and why):

``ctrl-text`` (frozen backbone: one representation per alignment row's prompt) ->
``ctrl-align`` (fresh encoder + projection heads, symmetric InfoNCE) -> ``ctrl-finetune``
(the aligned encoder trained with BCE by ``collm_bench.encoders.training.fit``) -> scoring by the
encoder (not cached: milliseconds). The backbone is loaded only when ``ctrl-text`` is
computed, so a rerun or another seed of a ``paper``-preset run never loads it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from collm_bench.llm.backbone import resolve_device, resolve_dtype
from collm_bench.api.components import options_dict
from collm_bench.encoders.training import build_encoder, fit, make_batch, predict, seed_everything, training_options
from collm_bench.encoders.stage import encoder_stage_inputs, plugin_source_module
from collm_bench.llm.scorer import to_device
from collm_bench.llmrec import PromptMaker
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.llm.prompts import bucket_batches
from collm_bench.cache.options import StageOptions
from collm_bench.cache.stages import StageResult, code_identity

from collm_bench_plugins.methods.ctrl import ALIGN, TEXT, resolved

TEXT_FILE, ALIGNED_FILE, TUNED_FILE = "text.npy", "aligned.safetensors", "encoder.safetensors"
# How a prompt becomes one vector; part of the text stage's key.
POOLING = {"encoder": "mean of last hidden states over real tokens",
           "causal": "final hidden state at the last position"}


def alignment_rows(data: Any, limit: int | None, seed: int) -> np.ndarray:
    """The train rows aligned: all of them, or a seeded sample of ``limit`` (sorted)."""
    rows = data.rows("train")
    if limit is not None and limit < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
    return rows


@torch.inference_mode()
def text_representations(backbone: Any, maker: PromptMaker, rows: np.ndarray, batch_size: int,
                         progress: Callable[[str], None] | None = None) -> np.ndarray:
    """One float32 vector per row's text prompt, pooled as ``POOLING[backbone.kind]``."""
    base = backbone.model.base_model  # the transformer without its LM head (itself for BERT)
    base.eval()
    device = next(backbone.model.parameters()).device
    out = np.zeros((len(rows), backbone.hidden_size), dtype=np.float32)
    done = 0
    for idx in bucket_batches(maker.lengths(rows, False), batch_size, seed=None):
        batch = to_device(maker.batch(rows[idx], False), device)
        mask = batch["attention_mask"]
        if backbone.kind == "causal":
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            hidden = base(input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions,
                          use_cache=False).last_hidden_state
            pooled = hidden[:, -1]
        else:
            hidden = base(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        out[idx] = pooled.float().cpu().numpy()
        done += len(idx)
        if progress is not None and done * 10 // len(rows) > (done - len(idx)) * 10 // len(rows):
            progress(f"text representations: {done}/{len(rows)} prompts")
    return out


class ProjectionHeads(nn.Module):
    """Linear maps of both views into one ``proj_dim`` space (as CTRL's projection layers)."""

    def __init__(self, collab_dim: int, text_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.collab = nn.Linear(collab_dim, proj_dim)
        self.text = nn.Linear(text_dim, proj_dim)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of pairs: row i of ``a`` should pick row i of ``b`` among
    all of ``b``, and the other way round; cosine similarity over ``temperature``."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def sample_representation(encoder: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The collaborative view of a row: the encoder's user and item representations side by
    side (for DIN the user one already holds the target item and the attended history)."""
    user, item = encoder.representations(batch)
    return torch.cat([user, item], dim=-1).float()


def align(encoder: nn.Module, text: np.ndarray, rows: np.ndarray, data: Any, *, history_len: int,
          opts: StageOptions, seed: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Contrastive alignment of ``encoder`` with the (standardised) text vectors of ``rows``;
    Adam without weight decay (the loss is scale-free). Returns the mean loss per epoch."""
    feats = torch.from_numpy(np.asarray(text, dtype=np.float32))
    feats = (feats - feats.mean(0)) / feats.std(0).clamp(min=1e-6)
    heads = ProjectionHeads(2 * encoder.rep_dim, feats.shape[1], opts.proj_dim)
    optimizer = torch.optim.Adam([*encoder.parameters(), *heads.parameters()], lr=opts.align_lr)
    rng = np.random.default_rng(seed)
    curve: list[float] = []
    started = time.perf_counter()
    for epoch in range(1, opts.align_epochs + 1):
        encoder.train()
        total, seen = 0.0, 0
        order = rng.permutation(len(rows))
        for lo in range(0, len(order), opts.align_batch_size):
            idx = order[lo:lo + opts.align_batch_size]
            if len(idx) < 2:  # no negative to contrast with
                continue
            collab = heads.collab(sample_representation(encoder, make_batch(data, rows[idx], history_len)))
            loss = info_nce(collab, heads.text(feats[idx]), opts.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        curve.append(round(total / max(seen, 1), 6))
        progress(f"ctrl alignment epoch {epoch}/{opts.align_epochs}: InfoNCE {curve[-1]:.4f}")
    encoder.eval()
    return {"train_seconds": round(time.perf_counter() - started, 3), "align_loss_curve": curve,
            "rows": int(len(rows)), "batches_per_epoch": int(np.ceil(len(rows) / opts.align_batch_size))}


def _summary(stage: StageResult) -> dict[str, Any]:
    keep = ("seconds", "train_seconds", "prompts_per_second")
    return {"key": stage.key, "cached": stage.cached, **{k: stage.meta[k] for k in keep if k in stage.meta}}


def run_ctrl(context: MethodContext) -> MethodOutput:
    from safetensors.torch import load_model, save_model

    ctx, data = context, context.data
    opts = resolved(ctx.options)
    text_opts, align_opts = StageOptions(opts, (TEXT,), stage="ctrl-text"), StageOptions(opts, (ALIGN,), stage="ctrl-align")
    registry, name, enc_opts = ctx.registry, ctx.encoder, ctx.encoder_options
    spec = registry.get("encoder", name)
    history_len = int(getattr(enc_opts, "history_len", 0) or 0)
    method_code = plugin_source_module(registry, "method", "ctrl")
    rows = alignment_rows(data, text_opts.align_rows, ctx.seed)

    # 1. Text representations from the frozen backbone.
    bb_opts = ctx.backbone_options
    device = resolve_device(getattr(bb_opts, "device", "auto"))
    text_inputs = {
        "dataset": ctx.dataset.sha256, "backbone": ctx.backbone,
        "backbone_options": options_dict(bb_opts) if dataclasses.is_dataclass(bb_opts) else None,
        "resolved": {"device": device, "dtype": resolve_dtype(getattr(bb_opts, "dtype", "auto"), device)},
        "options": text_opts.key(), "pooling": POOLING,
        "rows": hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16],
        "code": code_identity(method_code, plugin_source_module(registry, "backbone", ctx.backbone)),
    }

    def compute_text(path: Path) -> dict[str, Any]:
        backbone = registry.get("backbone", ctx.backbone).load(bb_opts)
        maker = PromptMaker(data, ctx.dataset.items, ctx.dataset.item_noun, backbone, text_opts.history_titles)
        started = time.perf_counter()
        text = text_representations(backbone, maker, rows, text_opts.text_batch_size, ctx.progress)
        np.save(path / TEXT_FILE, text.astype(np.float16))  # half the disk (ML-1M x Vicuna: 0.28 GB)
        seconds = time.perf_counter() - started
        return {"train_seconds": round(seconds, 3), "rows": int(len(rows)), "kind": backbone.kind,
                "prompts_per_second": round(len(rows) / seconds, 2) if seconds else None,
                "backbone": backbone.summary()}

    text_stage = ctx.stages.run("ctrl-text", text_inputs, compute_text, ctx.progress)

    # 2. Contrastive alignment of a fresh encoder.
    def build() -> nn.Module:
        seed_everything(ctx.seed)
        return build_encoder(spec, enc_opts, data)

    def compute_align(path: Path) -> dict[str, Any]:
        encoder = build()
        meta = align(encoder, np.load(text_stage.path / TEXT_FILE), rows, data, history_len=history_len,
                     opts=align_opts, seed=ctx.seed, progress=ctx.progress)
        save_model(encoder, str(path / ALIGNED_FILE))
        return meta

    align_stage = ctx.stages.run("ctrl-align", {
        "text": text_stage.key, "seed": ctx.seed, "options": align_opts.key(),
        "encoder": encoder_stage_inputs(registry, name, enc_opts, ctx.dataset.sha256, ctx.seed),
        "code": code_identity(method_code)}, compute_align, ctx.progress)

    # 3. BCE fine-tuning of the aligned encoder by the encoders' own loop.
    def compute_finetune(path: Path) -> dict[str, Any]:
        encoder = build()
        load_model(encoder, str(align_stage.path / ALIGNED_FILE))
        result = fit(encoder, data, **training_options(spec, enc_opts), seed=ctx.seed, progress=ctx.progress)
        save_model(encoder, str(path / TUNED_FILE))
        return {"train_seconds": round(result.train_seconds, 3), "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run, "best_valid_auc": round(result.best_valid_auc, 6),
                "valid_curve": [round(v, 6) for v in result.valid_curve]}

    tune_stage = ctx.stages.run("ctrl-finetune", {"aligned": align_stage.key, "seed": ctx.seed,
                                                  "encoder_options": options_dict(enc_opts),
                                                  "code": code_identity(method_code)},
                                compute_finetune, ctx.progress)

    encoder = build()
    load_model(encoder, str(tune_stage.path / TUNED_FILE))
    started = time.perf_counter()
    scores = predict(encoder, data, ctx.eval_rows, history_len=history_len)
    inference_seconds = time.perf_counter() - started
    stages = [text_stage, align_stage, tune_stage]
    text_backbone = text_stage.meta.get("backbone", {})
    return MethodOutput(
        scores=scores, inference_seconds=inference_seconds,
        train_seconds=sum(float(s.meta.get("train_seconds", 0.0)) for s in stages),
        stages={**{s.name: _summary(s) for s in stages}, "inference": {"seconds": round(inference_seconds, 3)}},
        details={"text_backbone": text_backbone, "pooling": POOLING[text_stage.meta["kind"]],
                 "alignment": {k: v for k, v in align_stage.meta.items() if k != "seconds"},
                 "finetune": {k: v for k, v in tune_stage.meta.items() if k != "seconds"}},
        encoder=name, backbone=ctx.backbone, meaningless=bool(text_backbone.get("meaningless", False)),
        options=options_dict(opts),
    )
