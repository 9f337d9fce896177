"""LLaRA's run on the LLM-rec toolkit (``collm_bench.llmrec``); ``collm_bench_llara`` says what
LLaRA is and where this adaptation differs. Stages: SASRec pretraining (shared with every other
method that uses the same encoder) -> joint tuning of LoRA and the projector with the curriculum
-> scoring with hybrid prompts. Imported only when the method runs (torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from collm_bench.encoders.training import make_batch, seed_everything
from collm_bench.encoders.stage import pretrained_encoder
from collm_bench.llm.scorer import add_lora, load_trainable, save_trainable
from collm_bench.llmrec import STEP1_READS, LLMRun, PromptMaker, batch_rows, train_prompts, tune_meta
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.llm.prompts import EMPTY_HISTORY, Prompts, plural, quote, recent_history
from collm_bench.cache.options import StageOptions

from collm_bench_llara import HYBRID

TUNED_FILE = "llara.safetensors"
# CoLLM's text template, with a hybrid token after each history title and after the target's.
HEAD = "#Question: A user has given high ratings to the following {items}: "
MIDDLE = ". Leverage the information to predict whether the user would enjoy the {item} titled {target} "
TAIL = '? Answer with "Yes" or "No". \\n#Answer:'


class HybridPromptMaker(PromptMaker):
    """Prompts with one slot per history item (oldest first) and one for the target item.
    ``with_ids`` is ignored: a text-only batch of the curriculum reads the same prompt with its
    slots left as the placeholder token (as the authors' ``[PH]``)."""

    _slots: np.ndarray | None = None   # every data row's slot items, filled as rows are asked for

    def slot_items(self, rows: np.ndarray) -> np.ndarray:
        """``[N, history_titles + 1]``: the item in each slot of each row's prompt (0: no slot),
        computed once per row: the prompts and the embedder of the same batch both ask."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._slots is None:
            self._slots = np.full((len(self.data.item), self.history_titles + 1), -1, dtype=np.int64)
        missing = np.unique(rows[self._slots[rows, 0] < 0])
        if len(missing):
            self._slots[missing] = self._slot_items(missing)
        return self._slots[rows]

    def _slot_items(self, rows: np.ndarray) -> np.ndarray:
        history = recent_history(self.data.history_matrix(rows, max(self.history_titles, 1)), self.history_titles)
        out = np.zeros((len(rows), self.history_titles + 1), dtype=np.int64)
        for r, (past, target) in enumerate(zip(history, self.data.item[rows].tolist())):
            items = past[past > 0]
            out[r, :len(items)] = items
            out[r, len(items)] = target
        return out

    def prompts(self, rows: np.ndarray, with_ids: bool) -> Prompts:
        items, item = plural(self.item_noun), self.item_noun
        parts = []
        for slots in self.slot_items(rows):
            filled = slots[slots > 0]
            past, target = filled[:-1], filled[-1]
            titles = [quote(str(self.titles[i])) for i in past]
            middle = MIDDLE.format(item=item, target=quote(str(self.titles[target])))
            if not titles:
                parts.append([HEAD.format(items=items) + EMPTY_HISTORY + middle, TAIL])
                continue
            parts.append([HEAD.format(items=items) + titles[0] + " ", *[", " + t + " " for t in titles[1:]],
                          middle, TAIL])
        return Prompts.from_parts(parts, self.backbone.placeholder_token, slots=self.history_titles + 1)


class Projector(nn.Module):
    """LLaRA's projector: ``Linear(d, d_llm) -> GELU -> Linear(d_llm, d_llm)``."""

    def __init__(self, d_in: int, d_llm: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, d_llm), nn.GELU(), nn.Linear(d_llm, d_llm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def item_embedder(encoder: nn.Module, projector: Projector, maker: HybridPromptMaker, data: Any,
                  history_len: int) -> Callable[[dict[str, Any]], torch.Tensor]:
    """``batch -> [B, slots, d_llm]``: each slot's item through the encoder's item side
    (``representations``, in the row's context) and the projector."""

    def embed(batch: dict[str, Any]) -> torch.Tensor:
        rows = batch_rows(batch)
        items = maker.slot_items(rows)
        device = next(projector.parameters()).device
        enc_batch = make_batch(data, np.repeat(rows, items.shape[1]), history_len)
        enc_batch["item"] = torch.from_numpy(items.reshape(-1))
        _, item_rep = encoder.representations({k: v.to(device) for k, v in enc_batch.items()})
        return projector(item_rep.float()).view(len(rows), items.shape[1], -1)

    return embed


def hybrid_schedule(curriculum: str, max_steps: int, seed: int) -> Callable[[int], bool] | None:
    """Whether step ``t`` uses hybrid prompts: with probability ``t / max_steps`` (drawn from
    ``(seed, t)``, so a resumed stage draws the same), or always (``none``)."""
    if curriculum == "none":
        return None
    return lambda step: bool(np.random.default_rng([seed, step]).random() < step / max_steps)


def run_llara(context: MethodContext) -> MethodOutput:
    ctx = context
    run = LLMRun(ctx, "llara", maker_factory=HybridPromptMaker)
    history_len = int(getattr(ctx.encoder_options, "history_len", 0) or 0)
    encoder, enc_stage = pretrained_encoder(ctx.registry, ctx.encoder, ctx.encoder_options, ctx.data,
                                            dataset_sha256=ctx.dataset.sha256, seed=ctx.seed, stages=ctx.stages,
                                            progress=ctx.progress)
    encoder.to(run.scorer.device).requires_grad_(False).eval()  # frozen, as the authors'
    seed_everything(ctx.seed)
    projector = Projector(encoder.rep_dim, run.backbone.hidden_size).to(run.scorer.device)
    embed = item_embedder(encoder, projector, run.maker, ctx.data, history_len)

    def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
        seed_everything(ctx.seed)
        add_lora(run.scorer, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout)
        schedule = hybrid_schedule(opts.curriculum, opts.max_steps, ctx.seed)
        result = train_prompts(run.scorer, run.maker, ctx.data, with_ids=True, modules={"projector": projector},
                               embed=embed, opts=opts, lr=opts.lr, max_steps=opts.max_steps, seed=ctx.seed,
                               progress=ctx.progress, hybrid_at=schedule)
        save_trainable(run.scorer, path / TUNED_FILE, extra={"projector": projector})
        hybrid = sum(schedule(t) for t in range(1, result.steps_run + 1)) if schedule else result.steps_run
        return {**tune_meta(result), "hybrid_steps": int(hybrid)}

    stage = run.stage("llara-tune", (*STEP1_READS, HYBRID), {"encoder": enc_stage.key}, compute)
    load_trainable(run.scorer, stage.path / TUNED_FILE, extra={"projector": projector})
    scores, scored = run.scores({"llara": stage.key}, with_ids=True, embed=embed)
    return run.output(scores, scored, [enc_stage, stage], encoder=ctx.encoder)
