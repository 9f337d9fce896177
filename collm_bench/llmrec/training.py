"""Tuning and scoring on prompts: the loop every tuned LLM stage runs (``train_prompts``) and the
scorer of evaluation rows (``score_rows``, shared prefixes read once on causal backbones)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from collm_bench._util import distributed
from collm_bench.llm.scorer import bce_loss, quantize_int8, score_batches, to_device
from collm_bench.llmrec.prompt_maker import PromptMaker
from collm_bench.records.metrics import auc
from collm_bench.progress import bar as progress_bar
from collm_bench.llm.prompts import bucket_batches, collate_shared, pack_groups, prefix_groups
from collm_bench.llm.tuning import TuneResult, cycle_batches, tune


def score_rows(scorer: nn.Module, maker: PromptMaker, rows: np.ndarray, *, with_ids: bool, batch_size: int,
               embed: Callable[[dict], torch.Tensor] | None = None,
               progress: Callable[[str], None] | None = None, share_prefixes: bool = True,
               resume: Path | None = None) -> np.ndarray:
    """Scores of ``rows`` in order; under torchrun each process scores its shard. A causal
    scorer reads shared prefixes once (``share_prefixes``, ``_score_shared``); otherwise batches
    of similar length, longest first. ``progress`` hears about every tenth of this process's rows.
    ``resume``: a folder keyed by the model where the scores so far are saved, so that an
    interrupted scoring restarts after its last saved batch (``score_batches``)."""
    lengths = maker.lengths(rows, with_ids)
    total = max(1, -(-len(rows) // distributed.world_size()))  # this process's share
    shown = progress_bar(total, "scoring", unit="prompt") if progress is not None else None

    def report(n: int) -> None:
        if shown is not None:
            shown.update(n)

    def score(positions: np.ndarray) -> np.ndarray:  # this process's share of the rows
        if share_prefixes and getattr(scorer, "kind", None) == "causal":
            return _score_shared(scorer, maker, rows[positions], with_ids=with_ids, batch_size=batch_size,
                                 embed=embed, report=report, resume=resume)

        def batches():
            for idx in bucket_batches(lengths[positions], batch_size, seed=None):
                batch = maker.batch(rows[positions[idx]], with_ids)
                batch["rows"] = idx
                yield batch

        return score_batches(scorer, batches(), n=len(positions), embed_fn=embed, progress=report, resume=resume)

    if shown is None:
        return distributed.sharded(len(rows), score)
    with shown:
        return distributed.sharded(len(rows), score)


def _score_shared(scorer: nn.Module, maker: PromptMaker, rows: np.ndarray, *, with_ids: bool, batch_size: int,
                  embed: Callable[[dict], torch.Tensor] | None, report: Callable[[int], None],
                  resume: Path | None = None) -> np.ndarray:
    """Causal scoring with shared prefixes: a user's consecutive prompts share the instruction and,
    until their next positive, the whole history, so each group's prefix is read once
    (``LLMScorer.forward_shared``; the same scores up to float rounding, 1.25x fewer tokens on
    whole ml-100k users with 5 titles; less on the cpu preset's sample, which draws a few rows of
    every user, so that fewer consecutive rows share a prefix). The ID embeddings are computed first, so that a placeholder joins a shared prefix
    only where its embedding is the same for every row of the group."""
    backbone = maker.backbone
    tokenized = maker.tokenized(rows, with_ids)
    vectors, keys = None, None
    if embed is not None:
        with torch.inference_mode():
            vectors = torch.cat([embed({"data_rows": rows[lo:lo + 4096]}) for lo in range(0, len(rows), 4096)])
        as_bytes = vectors.float().cpu().numpy()
        keys = np.array([[hashlib.sha1(as_bytes[r, j].tobytes()).hexdigest() for j in range(as_bytes.shape[1])]
                         for r in range(len(rows))], dtype=object)
    groups = prefix_groups(tokenized, maker.data.user[rows], placeholder_keys=keys, max_rows=batch_size)
    batches = (collate_shared(tokenized, packed, pad_id=backbone.pad_token_id)
               for packed in pack_groups(groups, batch_size))
    embed_fn = (lambda batch: vectors[batch["rows"].to(vectors.device)]) if vectors is not None else None
    return score_batches(scorer, batches, n=len(rows), embed_fn=embed_fn, progress=report, resume=resume)


def valid_rows(data, limit: int | None, seed: int) -> np.ndarray:
    """``valid_small`` rows (the authors' checkpoint-selection half), optionally a seeded subset."""
    rows = np.flatnonzero(data.valid_small)
    if limit is not None and limit < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
    return rows


def train_prompts(
    scorer, maker: PromptMaker, data, *, with_ids: bool, modules: dict[str, nn.Module],
    embed: Callable[[dict], torch.Tensor] | None, opts: Any, lr: float, max_steps: int, seed: int,
    progress: Callable[[str], None], hybrid_at: Callable[[int], bool] | None = None,
) -> TuneResult:
    """Tune whatever in ``scorer`` and ``modules`` requires grad, on the train rows' prompts;
    validation AUC on ``valid_small``; ends in the best state.

    ``opts`` gives the loop's settings (``batch_size``, ``valid_rows``, ``score_batch_size``,
    ``weight_decay``, ``warmup_steps``, ``eval_every``, ``patience``: the ``tuning`` group of a
    stage's ``StageOptions``). ``hybrid_at(step)`` (a curriculum) says whether step ``step``'s
    batch gets its ID embeddings from ``embed``; when it says no, the same prompts are read with
    their placeholder tokens as text. Validation always uses ``embed``. A stage that reads
    ``head_lr`` (step 1's group) gives the encoder backbones' answer head that learning rate."""
    train = data.rows("train")
    lengths = maker.lengths(train, with_ids)

    def order(rows: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        # ``rows`` is always ``train``: batches of similar prompt length, reshuffled every pass
        return [rows[b] for b in bucket_batches(lengths, opts.batch_size, seed=int(rng.integers(1 << 31)))]

    check_rows = valid_rows(data, opts.valid_rows, seed)
    labels = torch.from_numpy(data.label.astype(np.float32))
    named = [(f"scorer.{n}", p) for n, p in scorer.named_parameters()]
    for prefix, module in modules.items():
        named += [(f"{prefix}.{n}", p) for n, p in module.named_parameters()]
    trainable = [(n, p) for n, p in named if p.requires_grad]
    # Applied here, not by each caller: an option in the stage's key must change what it trains.
    # getattr: a stage that does not read step 1's group has no head_lr (StageOptions raises).
    head_lr = getattr(opts, "head_lr", None)
    rates = {"scorer.head.": head_lr} if head_lr else None

    def loss_of(rows: np.ndarray, step: int) -> torch.Tensor:
        scorer.train()
        for module in modules.values():
            module.train()
        batch = to_device(maker.batch(rows, with_ids), scorer.device)
        use_ids = embed is not None and (hybrid_at is None or hybrid_at(step))
        ids = embed(batch) if use_ids else None
        logits = scorer(batch["input_ids"], batch["attention_mask"], ids,
                        batch["placeholder_positions"] if ids is not None else None)
        return bce_loss(logits, labels[rows])

    def evaluate() -> float:
        for module in modules.values():
            module.eval()
        # under torchrun, a module trained here (DIN's batch-norm statistics) scores with rank 0's buffers
        distributed.broadcast_from_main(b for module in modules.values() for b in module.buffers())
        scores = score_rows(scorer, maker, check_rows, with_ids=with_ids, batch_size=opts.score_batch_size,
                            embed=embed)
        return auc(data.label[check_rows], scores)

    def snapshot() -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in trainable}

    def restore(state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for n, p in trainable:
                p.copy_(state[n])

    progress(f"tuning {sum(p.numel() for _, p in trainable):,} parameters "
             f"({'ID' if with_ids else 'text'} prompts, {max_steps} steps max, batch {opts.batch_size}, "
             f"validation on {len(check_rows)} valid_small rows every {opts.eval_every} steps)")
    return tune(named_parameters=trainable, batches=cycle_batches(train, opts.batch_size, seed, order=order),
                loss_of=loss_of, evaluate=evaluate, snapshot=snapshot, restore=restore, lr=lr,
                weight_decay=opts.weight_decay, max_steps=max_steps, warmup_steps=opts.warmup_steps,
                eval_every=opts.eval_every, patience=opts.patience, progress=progress, lr_by_prefix=rates)


def tune_meta(result: TuneResult) -> dict[str, Any]:
    return {"train_seconds": round(result.train_seconds, 3), "eval_seconds": round(result.eval_seconds, 3),
            "best_step": result.best_step, "best_valid_auc": round(result.best_valid_auc, 6),
            "steps_run": result.steps_run, "stopped": result.stopped, "valid_curve": result.curve,
            "train_samples_per_second": round(result.samples_per_second, 2)}


def inference_scorer(scorer, int8: bool):
    """The scorer used on test rows: itself, or an int8 dynamic-quantized copy (CPU)."""
    return quantize_int8(scorer) if int8 else scorer

