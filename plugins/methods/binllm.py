"""``binllm``: BinLLM (Zhang et al., ACL 2024, "Text-like Encoding of Collaborative Information in
Large Language Models for Recommendation"; by CoLLM's authors, on CoLLM's code).

What BinLLM does: an MF model whose user and item embeddings pass through a hashing layer,
``sign(tanh(Linear(e)))`` with a straight-through gradient (one ``Linear(d, d)`` for users, one
for items), is trained from scratch on the train rows (BCE on the dot product of the two codes),
so that each user and item gets a ``d``-bit binary code (``d`` = 32 on ML-1M, so 32 bits). The
codes are written into CoLLM's ID prompt as text where CoLLM injects embeddings: plain bits
(``0110...``) or the "ipv4" form (8-bit groups as dot-joined decimals, ``183.7.240.19``). The
LLM reads collaborative information as text: step 1 is TALLRec's (LoRA on text prompts, shared
with ``tallrec`` and ``collm`` through the stage cache), step 2 goes on tuning LoRA on the
prompts with codes, the codes frozen. Scored as CoLLM (its readout, BCE: the Yes logit under the
``paper`` preset, Yes minus No under ``cpu``, a learned head on an encoder backbone).

As the authors' code (``hashGNN_ml.py``, ``rec_base_models.py``, ``hash_CF_ml.yaml``): while the
hash model trains, each code dimension is the continuous ``tanh`` value with probability
``1 - beta`` and the sign otherwise, ``beta`` rising by ``hash_beta_step`` every 2 epochs from 0;
validation AUC is that of the pure sign codes, early stopping with patience 100; Adam, lr 1e-2,
weight decay 1e-3, batch 2048. Departures (docs/protocol.md, "BinLLM"): step 2's budget is the
preset's step-2 budget (``cpu``: 100 steps of 16 rows), not the authors' 200 x 50 iterations;
LoRA and, on an encoder backbone, its answer head are tuned in step 2 (the authors tune LoRA;
their causal LLM has no head); the prompt is CoLLM's ID template with codes for its two slots,
the history titles without codes (as the authors'), the dataset's item noun for "book".
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option
from collm_bench.llmrec import LLMOptions, STEP2, default_eval_sample, resolved

HASH, CODES = "hash", "codes"  # option groups: the hash model's stage; how codes are written
CODE_TEXTS = ("bits", "ipv4")
CODE_BITS = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class BinLLMOptions(LLMOptions):
    """TALLRec's options (step 1) plus the hash model's, the code text and step 2's budget."""

    code_text: str = option("bits", choices=CODE_TEXTS, groups=(CODES,),
                            help="bits: 0110...; ipv4: 8-bit groups as dot-joined decimals")
    hash_bits: int = option(32, ge=8, groups=(HASH,),
                            help="code length = the hash MF's embedding size (8, 16, 32, 64 or 128)")
    hash_lr: float = option(1e-2, gt=0, groups=(HASH,), help="hash model learning rate (Adam)")
    hash_weight_decay: float = option(1e-3, ge=0, groups=(HASH,), help="hash model weight decay")
    hash_batch_size: int = option(2048, ge=1, groups=(HASH,), help="hash model rows per batch")
    hash_beta_step: float = option(1e-3, gt=0, le=1, groups=(HASH,),
                                   help="rise of the share of sign codes every 2 epochs of hash training")
    hash_max_epochs: int = option(5000, ge=1, groups=(HASH,), help="hash model epoch budget")
    hash_patience: int = option(100, ge=1, groups=(HASH,), help="epochs without validation gain before stopping")
    step2_lr: float | None = option(None, gt=0, groups=(STEP2,), help="step-2 (LoRA on code prompts) learning rate")
    step2_max_steps: int | None = option(None, ge=1, groups=(STEP2,), help="step-2 budget in steps")

    def __post_init__(self) -> None:
        if self.hash_bits not in CODE_BITS:
            raise ValueError(f"option 'hash_bits' got {self.hash_bits}; allowed: {', '.join(map(str, CODE_BITS))}")


def run(context):
    from collm_bench_plugins.methods.binllm_run import run_binllm

    return run_binllm(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="binllm", run=run, options=BinLLMOptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="BinLLM (ACL 2024): hashed MF codes written into CoLLM's ID prompt as text; LoRA in two steps",
    ))
