"""BinLLM's run on the LLM-rec toolkit (``collm_bench.llmrec``); ``binllm`` says what BinLLM is
and where this port departs. Stages: the hash model (MF + hashing layer, trained from scratch;
keyed by dataset, seed and its options only, so every backbone shares it) -> step 1 (TALLRec's,
shared) -> step 2 (LoRA on the ID prompt with codes as text) -> scoring. Imported only when the
method runs (torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.cache.stages import code_identity
from collm_bench.encoders.training import fit, seed_everything
from collm_bench.llm.prompts import ID_TEMPLATE
from collm_bench.llm.scorer import load_trainable, save_trainable, set_lora_trainable
from collm_bench.llmrec import PROMPT, SCORING, STEP2, TUNING, LLMRun, TextPromptMaker, train_prompts, tune_meta

from collm_bench_plugins.methods.binllm import CODES, HASH

CODES_FILE, STEP2_FILE = "codes.npz", "binllm-step2.safetensors"
INIT_STD = 0.1  # as the MF encoder's (collm_bench_plugins.encoders.mf)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x >= 0``, else -1; the gradient passes straight through (the authors' STE)."""
    return x + (torch.where(x >= 0, 1.0, -1.0) - x).detach()


class HashMF(nn.Module):
    """MF whose user and item embeddings are hashed: ``sign(tanh(Linear(e)))``, one layer for
    users, one for items; the logit is the dot product of the two codes. In training each code
    dimension is the ``tanh`` value with probability ``1 - beta`` and the sign otherwise, ``beta``
    rising by ``beta_step`` every 2 epochs (``fit`` calls ``train()`` once per epoch)."""

    def __init__(self, n_users: int, n_items: int, bits: int, beta_step: float) -> None:
        super().__init__()
        self.user_emb, self.item_emb = nn.Embedding(n_users, bits), nn.Embedding(n_items, bits)
        nn.init.normal_(self.user_emb.weight, std=INIT_STD)
        nn.init.normal_(self.item_emb.weight, std=INIT_STD)
        self.proj_u, self.proj_i = nn.Linear(bits, bits), nn.Linear(bits, bits)
        self.beta_step, self.epoch = beta_step, 0

    @property
    def beta(self) -> float:
        """The share of sign codes in training this epoch: 0 in epochs 1-2, then one step more every 2."""
        return min(1.0, self.beta_step * ((self.epoch - 1) // 2)) if self.epoch else 0.0

    def train(self, mode: bool = True) -> "HashMF":
        if mode:
            self.epoch += 1
        return super().train(mode)

    def codes(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The continuous values and the ±1 codes of ``users`` and ``items``."""
        zu, zi = torch.tanh(self.proj_u(self.user_emb(users))), torch.tanh(self.proj_i(self.item_emb(items)))
        return (zu, zi), (sign_ste(zu), sign_ste(zi))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        (zu, zi), (hu, hi) = self.codes(batch["user"], batch["item"])
        if self.training:
            hu = torch.where(torch.rand_like(zu) < self.beta, hu, zu)
            hi = torch.where(torch.rand_like(zi) < self.beta, hi, zi)
        return (hu * hi).sum(-1)


def code_strings(bits: np.ndarray, form: str) -> list[str]:
    """Rows of 0/1 as text: ``bits`` ("0110...") or ``ipv4`` (8-bit groups, dot-joined decimals)."""
    bits = np.asarray(bits, dtype=np.int64)
    if form == "bits":
        return ["".join(map(str, row)) for row in bits.tolist()]
    if bits.shape[1] % 8:
        raise ValueError(f"ipv4 codes need a multiple of 8 bits, got {bits.shape[1]}")
    groups = bits.reshape(len(bits), -1, 8) @ (1 << np.arange(7, -1, -1))
    return [".".join(map(str, row)) for row in groups.tolist()]


class CodePromptMaker(TextPromptMaker):
    """CoLLM's ID prompt with the user's and the target item's codes written where its two ID
    slots are; ``set_codes`` gives them (per dense user and item index)."""

    template = ID_TEMPLATE
    holds = "the user's last liked titles, the target's title, the user's and the target's hash codes as text"
    user_codes: Sequence[str] | None = None
    item_codes: Sequence[str] | None = None

    def set_codes(self, user_codes: Sequence[str], item_codes: Sequence[str]) -> None:
        self.user_codes, self.item_codes = user_codes, item_codes

    def fields(self, rows: np.ndarray) -> dict[str, Sequence[str]]:
        if self.user_codes is None or self.item_codes is None:
            raise RuntimeError("CodePromptMaker.set_codes was not called before its prompts were asked for")
        return {"user_id": [self.user_codes[u] for u in self.data.user[rows].tolist()],
                "item_id": [self.item_codes[i] for i in self.data.item[rows].tolist()]}


def hash_stage(run: LLMRun, ctx: MethodContext):
    """The hash model's codes (0/1 per dense user and item index), cached by dataset, seed and
    the ``hash`` options alone."""
    opts = run.options_for(HASH)

    def compute(path: Path) -> dict[str, Any]:
        seed_everything(ctx.seed)
        model = HashMF(ctx.data.n_users, ctx.data.n_items, opts.hash_bits, opts.hash_beta_step)
        result = fit(model, ctx.data, lr=opts.hash_lr, weight_decay=opts.hash_weight_decay,
                     batch_size=opts.hash_batch_size, max_epochs=opts.hash_max_epochs, patience=opts.hash_patience,
                     seed=ctx.seed, progress=ctx.progress)
        with torch.no_grad():
            _, (users, items) = model.codes(torch.arange(ctx.data.n_users), torch.arange(ctx.data.n_items))
        np.savez(path / CODES_FILE, users=(users > 0).numpy().astype(np.int8), items=(items > 0).numpy().astype(np.int8))
        return {"train_seconds": round(result.train_seconds, 3), "best_epoch": result.best_epoch,
                "best_valid_auc": round(result.best_valid_auc, 6), "epochs_run": result.epochs_run,
                "beta_at_best": round(min(1.0, opts.hash_beta_step * max(0, (result.best_epoch - 1) // 2)), 6)}

    key = {"dataset": ctx.dataset.sha256, "seed": ctx.seed, "options": opts.key(),
           "code": code_identity(hash_stage, HashMF)}
    return ctx.stages.run("binllm-hash", key, compute, ctx.progress)


def run_binllm(context: MethodContext) -> MethodOutput:
    ctx = context
    run = LLMRun(ctx, "binllm", maker_factory=CodePromptMaker)
    hashed = hash_stage(run, ctx)
    with np.load(hashed.path / CODES_FILE) as codes:
        form = run.options_for(CODES).code_text
        run.maker.set_codes(code_strings(codes["users"], form), code_strings(codes["items"], form))
    ctx.progress(f"binllm prompts: {run.maker.describe()} ({form})")

    step1 = run.step1()
    set_lora_trainable(run.scorer, True)  # step 2 goes on tuning LoRA (and the answer head, if any)
    reads = (PROMPT, TUNING, STEP2, CODES)

    def compute(path: Path, opts) -> dict[str, Any]:
        seed_everything(ctx.seed)
        result = train_prompts(run.scorer, run.maker, ctx.data, with_ids=False, modules={}, embed=None, opts=opts,
                               lr=opts.step2_lr, max_steps=opts.step2_max_steps, seed=ctx.seed, progress=ctx.progress)
        save_trainable(run.scorer, path / STEP2_FILE)
        return tune_meta(result)

    step2 = run.stage("binllm-step2", reads, {"step1": step1.key, "hash": hashed.key}, compute)
    load_trainable(run.scorer, step2.path / STEP2_FILE)
    scores, scored = run.scores({"binllm": step2.key}, with_ids=False, reads=(PROMPT, SCORING, CODES))
    return run.output(scores, scored, [hashed, step1, step2])
