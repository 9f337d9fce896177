"""The LLM baselines on the LLM-rec toolkit (``collm_bench.llmrec``): ICL (no training),
Prompt4NR (soft prompt + LoRA) and the UI-token ablation (per-user / per-item token
embeddings instead of the CIE). Each stage is cached like TALLRec's and CoLLM's; the
registration modules (``icl``, ``prompt4nr``, ``ui_token``) say what each method is and why.
Imported only when one of them runs (torch, transformers, peft).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from collm_bench.encoders.training import seed_everything
from collm_bench.errors import UserError
from collm_bench.llm.scorer import LLMScorer, add_lora, load_trainable, save_trainable, set_lora_trainable
from collm_bench.llmrec import (PROMPT, STEP1_READS, STEP2, TUNING, LLMRun, PromptMaker, batch_rows, train_prompts,
                                tune_meta)
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.llm.prompts import TokenizedPrompts, special_tokens, tokenize_for
from collm_bench.cache.options import StageOptions

from collm_bench_plugins.methods.prompt4nr import SOFT_PROMPT

PROMPT4NR_FILE, UI_TOKEN_FILE = "prompt4nr.safetensors", "ui-token.safetensors"


def _with_load_time(output: MethodOutput, run: LLMRun) -> MethodOutput:
    output.stages = {"backbone-load": {"seconds": round(run.load_seconds, 3)}, **output.stages}
    return output


# --- ICL ------------------------------------------------------------------------------------

def needs_lm_head(method: str, backbone: str, kind: str | None) -> None:
    """The one-line refusal of a backbone without an LM head (``kind`` known or loaded)."""
    if kind is not None and kind != "causal":
        raise UserError(
            f"method {method} reads the answer from a language-model head, and backbone {backbone} is an "
            f"{kind} without one: pick a causal backbone (--backbone vicuna7b, qwen2-1.5b or hf:<id>; "
            f"tiny-llama for a smoke test with random weights)")


class YesNoScorer(LLMScorer):
    """The scorer of ICL: refuses a backbone without an LM head, then reads ``logit(Yes) -
    logit(No)`` (``readout="yes-no"``) or the raw Yes logit (``"yes"``). The ``icl`` module
    docstring says why the difference."""

    def __init__(self, backbone: Any, readout: str = "yes-no") -> None:
        needs_lm_head("icl", backbone.name, backbone.kind)
        super().__init__(backbone, readout=readout)


def run_icl(context: MethodContext) -> MethodOutput:
    """Score the evaluation rows with the untuned backbone (one cached scoring stage)."""
    spec = context.registry.get("backbone", context.backbone)
    needs_lm_head("icl", context.backbone, getattr(spec, "kind", None))  # before any weights load
    readout = context.options.readout  # in the scoring group: part of the scores' key
    run = LLMRun(context, "icl", scorer_factory=lambda backbone: YesNoScorer(backbone, readout))
    scores, scored = run.scores({"untuned": run.backbone.name}, with_ids=False)
    return _with_load_time(run.output(scores, scored, []), run)


# --- Prompt4NR ------------------------------------------------------------------------------

class SoftPromptMaker(PromptMaker):
    """Text prompts with ``n_soft`` placeholder tokens right after the opening special token;
    their positions are the batch's ``placeholder_positions`` (``[B, n_soft]``), where the
    scorer writes the soft prompt. ``with_ids`` is ignored: the template is the text one."""

    def __init__(self, *args: Any, n_soft: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_soft = n_soft

    def lengths(self, rows: np.ndarray, with_ids: bool) -> np.ndarray:
        return super().lengths(rows, False)

    def tokenized(self, rows: np.ndarray, with_ids: bool) -> TokenizedPrompts:
        backbone = self.backbone
        text = tokenize_for(backbone, self.prompts(rows, False))
        start = len(special_tokens(backbone.tokenizer, backbone.kind)[0])
        soft = np.full(self.n_soft, backbone.placeholder_token_id, dtype=np.int64)
        ids = [np.concatenate([seq[:start], soft, seq[start:]]) for seq in text.ids]
        positions = np.tile(np.arange(start, start + self.n_soft, dtype=np.int64), (len(ids), 1))
        longest = max((len(x) for x in ids), default=0)
        if backbone.max_length is not None and longest > backbone.max_length:
            raise UserError(f"a prompt with its soft tokens is {longest} tokens long, over the backbone's limit "
                            f"of {backbone.max_length}: use fewer history titles or soft tokens")
        return TokenizedPrompts(ids, positions)


class SoftPrompt(nn.Module):
    """``n`` trainable token embeddings, started from those of randomly drawn vocabulary tokens
    (prompt tuning's vocabulary initialisation: they start where real tokens live)."""

    def __init__(self, scorer: LLMScorer, n: int, seed: int) -> None:
        super().__init__()
        table = scorer.model.get_input_embeddings().weight
        generator = torch.Generator().manual_seed(seed)
        picks = torch.randint(0, table.shape[0], (n,), generator=generator)
        self.tokens = nn.Parameter(table.detach()[picks.to(table.device)].float().clone())

    def embed(self, batch: dict[str, Any]) -> torch.Tensor:
        """The soft prompt for every row of ``batch``: ``[B, n, hidden]``."""
        return self.tokens.unsqueeze(0).expand(len(batch["data_rows"]), -1, -1)


def run_prompt4nr(context: MethodContext) -> MethodOutput:
    """Tune LoRA and the soft prompt as TALLRec's step 1 (cached), then score."""
    ctx = context
    reads = (*STEP1_READS, SOFT_PROMPT)
    n_soft = ctx.options.soft_tokens  # in the soft-prompt group, read by the stage below
    run = LLMRun(ctx, "prompt4nr", maker_factory=lambda *args: SoftPromptMaker(*args, n_soft=n_soft))
    soft = SoftPrompt(run.scorer, n_soft, ctx.seed).to(run.scorer.device)

    def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
        seed_everything(ctx.seed)
        add_lora(run.scorer, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout)
        initial = soft.tokens.detach().clone()
        # step 1's budget, the encoder backbone's answer head included (head_lr, as TALLRec's: train_prompts)
        result = train_prompts(run.scorer, run.maker, ctx.data, with_ids=True, modules={"soft": soft},
                               embed=soft.embed, opts=opts, lr=opts.lr, max_steps=opts.max_steps, seed=ctx.seed,
                               progress=ctx.progress)
        save_trainable(run.scorer, path / PROMPT4NR_FILE, extra={"soft": soft})
        moved = (soft.tokens.detach() - initial).norm(dim=-1) / initial.norm(dim=-1).clamp(min=1e-12)
        return {**tune_meta(result), "soft_tokens_relative_change": round(float(moved.mean()), 6)}

    stage = run.stage("prompt4nr-tune", reads, {}, compute)
    load_trainable(run.scorer, stage.path / PROMPT4NR_FILE, extra={"soft": soft})
    scores, scored = run.scores({"prompt4nr": stage.key}, with_ids=True, embed=soft.embed)
    return _with_load_time(run.output(scores, scored, [stage]), run)


# --- UI-token ablation ----------------------------------------------------------------------

class UITokens(nn.Module):
    """One trainable input embedding per user and per item (the new vocabulary tokens), rows
    drawn per dimension around the vocabulary embeddings' mean at their standard deviation."""

    def __init__(self, scorer: LLMScorer, n_users: int, n_items: int) -> None:
        super().__init__()
        vocab = scorer.model.get_input_embeddings().weight.detach().float()
        mean, std = vocab.mean(0), vocab.std(0)
        self.users = nn.Embedding(n_users, vocab.shape[1], device=vocab.device)
        self.items = nn.Embedding(n_items, vocab.shape[1], device=vocab.device)
        with torch.no_grad():
            for table in (self.users, self.items):
                table.weight.copy_(mean + std * torch.randn_like(table.weight))

    def embedder(self, data: Any) -> Callable[[dict[str, Any]], torch.Tensor]:
        """``batch -> [B, 2, hidden]``: the batch rows' user and item tokens (user first)."""

        def embed(batch: dict[str, Any]) -> torch.Tensor:
            rows = batch_rows(batch)
            device = self.users.weight.device
            users = torch.from_numpy(data.user[rows].astype(np.int64)).to(device)
            items = torch.from_numpy(data.item[rows].astype(np.int64)).to(device)
            return torch.stack([self.users(users), self.items(items)], dim=1)

        return embed


def run_ui_token(context: MethodContext) -> MethodOutput:
    """Step 1 (shared, cached), then step 2 on the two token tables with LoRA frozen, then score."""
    ctx = context
    run = LLMRun(ctx, "ui-token")
    data = ctx.data
    step1 = run.step1()
    set_lora_trainable(run.scorer, False)
    if run.scorer.head is not None:  # the encoder backbone's answer head is frozen with the LLM
        run.scorer.head.requires_grad_(False)
    seed_everything(ctx.seed)
    tokens = UITokens(run.scorer, data.n_users, data.n_items)
    embed = tokens.embedder(data)

    def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
        result = train_prompts(run.scorer, run.maker, data, with_ids=True, modules={"ui": tokens}, embed=embed,
                               opts=opts, lr=opts.step2_lr, max_steps=opts.step2_max_steps, seed=ctx.seed,
                               progress=ctx.progress)
        save_trainable(run.scorer, path / UI_TOKEN_FILE, extra={"ui": tokens})
        return tune_meta(result)

    step2 = run.stage("ui-token-step2", (PROMPT, TUNING, STEP2), {"upstream": {"step1": step1.key}}, compute)
    load_trainable(run.scorer, step2.path / UI_TOKEN_FILE, extra={"ui": tokens})
    scores, scored = run.scores({"ui-token-step2": step2.key}, with_ids=True, embed=embed)
    return _with_load_time(run.output(scores, scored, [step1, step2]), run)
