"""Options of the LLM methods (tallrec, collm and the toolkit's other users) and their presets.

``paper``: the authors' settings (docs/protocol.md), for GPUs. ``cpu``: a step budget
that keeps the embedded default (MF + TALLRec + CoLLM-MF on ml-100k with MiniLM) within
minutes on a 2-core CPU. ``cpu-long``: ``cpu`` with 10,000 step-1 rows, the budget-study point
from which TALLRec is no longer distinguishable from MF on the official ML-1M split with MiniLM
(leaderboards/studies/budget.md). ``auto`` picks
``paper`` when CUDA is available, else ``cpu``.
A field left at ``None`` takes its preset's value; any field can be set explicitly.

Each option names its groups (``collm_bench.cache.options``), the parts of the pipeline that
read it: ``prompt`` (the prompt text), ``tuning`` (the loop every tuned stage shares), ``lora``,
``step1`` / ``step2`` (each step's own budget), ``head`` (the rate of an encoder backbone's answer
head, read by the stage that first trains it), ``cie``, ``scoring`` and ``scorer`` (how the
answer is read: part of every stage of a run, since every stage uses the scorer). A stage's key
is the options of the groups it reads.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from collm_bench._util.devices import cpu_only_torch
from collm_bench.api.components import option
from collm_bench.llm.readout import POOLINGS, READOUTS  # noqa: F401 - re-exported: the toolkit's option values

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(history_titles=10, batch_size=32, lr=1e-3, step2_lr=1e-3, max_steps=20_000,
                  step2_max_steps=20_000, eval_every=50, patience=20, warmup_steps=50,
                  valid_rows=None, eval_sample=None, int8_inference=False, head_lr=None, readout="yes"),
    # 32 = 16 per GPU x 2 GPUs of the authors' runs.
    # head_lr: the step-1 recipe study (leaderboards/studies/recipe-ml-100k.md, recipe-ml-1m.md). A new
    # answer head learning at the LoRA rate barely moves in 150 steps; at 1e-2 best validation
    # AUC gains on every seed of both datasets: ml-100k +0.0169 +- 0.0069 (3 seeds, 2,000 rows),
    # official ML-1M +0.0190 +- 0.0129 (2 seeds, 5,200 rows). Not adopted: mean pooling (ML-1M
    # +0.0273 +- 0.0044 over 2 seeds, ml-100k +0.0021 +- 0.0119 over 3: no gain there).
    # readout (causal backbones; a departure from the paper, docs/protocol.md): Yes minus No
    # instead of the Yes logit (leaderboards/studies/recipe-smollm2-ml-100k.md, SmolLM2-135M-Instruct,
    # 1,000 validation rows): the difference cancels what raises both answers alike, which the
    # Yes logit of a barely tuned LM mostly ranks by. Best validation AUC 0.5354 vs 0.5168
    # (seed 0) and 0.5609 vs 0.4901 (seed 1), +0.0447 +- 0.0369, much of it already at step 0.
    # On official ML-1M (recipe-smollm2-ml-1m.md, one seed) neither readout leaves chance at this
    # budget (0.4990 vs 0.4960): no evidence against the choice there, none for it either.
    "cpu": dict(history_titles=5, batch_size=16, lr=1e-3, step2_lr=1e-3, max_steps=150,
                step2_max_steps=100, eval_every=50, patience=20, warmup_steps=10,
                valid_rows=400, eval_sample=3000, int8_inference=False, head_lr=1e-2, readout="yes-no"),
}
# The budget at which the ordering changes on the official ML-1M split (leaderboards/studies/budget.md,
# MiniLM, records of 2026-12-06): at 10,000 step-1 rows TALLRec is no longer distinguishable
# from MF (-0.0383, paired 95% interval -0.0824 to +0.0039; at 2,400 rows -0.0736, below it),
# while CoLLM-MF stays above MF (+0.0469, +0.0179 to +0.0740). About 18 min of step 1 on ML-1M
# on one CPU thread (15 min of it training).
PRESETS["cpu-long"] = {**PRESETS["cpu"], "max_steps": 625}
STRATEGIES = ("default", "t1", "t2", "t3")
# Option groups: what reads an option (see the module docstring).
PROMPT, TUNING, LORA, STEP1, STEP2, CIE_GROUP, SCORING = "prompt", "tuning", "lora", "step1", "step2", "cie", "scoring"
HEAD = "head"      # an encoder backbone's answer head: read wherever the head is first trained
SCORER = "scorer"  # how the scorer reads its answer: every stage of a run uses the scorer
STEP1_READS = (PROMPT, TUNING, LORA, STEP1)
CIE_INPUTS = ("raw", "layernorm")


@dataclass(frozen=True)
class LLMOptions:
    """Options shared by the LLM methods (None: the preset's value)."""

    preset: str = option("auto", choices=("auto", *PRESETS), help="auto: paper on a GPU, else cpu")
    history_titles: int | None = option(None, ge=0, help="last N positive titles in the prompt",
                                        groups=(PROMPT,))
    batch_size: int | None = option(None, ge=1, help="rows per training step", groups=(TUNING,))
    lr: float | None = option(None, gt=0, help="step-1 (LoRA) learning rate", groups=(STEP1,))
    max_steps: int | None = option(None, ge=1, help="step-1 budget in steps", groups=(STEP1,))
    eval_every: int | None = option(None, ge=1, help="steps between validations (an 'epoch' of the authors)",
                                    groups=(TUNING,))
    patience: int | None = option(None, ge=1, help="validations without gain before stopping", groups=(TUNING,))
    warmup_steps: int | None = option(None, ge=0, help="linear warm-up steps", groups=(TUNING,))
    valid_rows: int | None = option(None, ge=2, help="valid_small rows used for validation (none: all)",
                                    groups=(TUNING,))
    eval_sample: int | None = option(None, ge=1, help="default test sample in rows, drawn within every user (none: all)")
    int8_inference: bool | None = option(None, help="score with an int8 dynamic-quantized copy (CPU)",
                                         groups=(SCORING,))
    weight_decay: float = option(1e-3, ge=0, help="AdamW weight decay", groups=(TUNING,))
    lora_r: int = option(8, ge=1, help="LoRA rank", groups=(LORA,))
    lora_alpha: int = option(16, gt=0, help="LoRA alpha", groups=(LORA,))
    lora_dropout: float = option(0.05, ge=0, lt=1, help="LoRA dropout", groups=(LORA,))
    # Scoring batches differ in padding, hence in float rounding (and validation picks the best
    # step): the tuned stages read it too.
    score_batch_size: int = option(64, ge=1, help="prompts per scoring batch", groups=(SCORING, TUNING))
    # The answer readout (causal backbones) and pooling (encoder backbones): the paper reads the
    # Yes logit (the cpu preset reads Yes minus No); an encoder has no LM head, so a learned head
    # reads its [CLS] state.
    readout: str | None = option(None, choices=READOUTS, groups=(SCORER,),
                                 help="causal backbones: yes (the paper's Yes logit) or yes-no (Yes minus No)")
    pooling: str = option("cls", choices=POOLINGS, groups=(SCORER,),
                          help="encoder backbones: the answer head reads [CLS] (cls) or the mean of all tokens (mean)")
    head_lr: float | None = option(None, gt=0, groups=(STEP1, HEAD),
                                   help="step-1 learning rate of an encoder backbone's answer head (none: lr; "
                                        "a causal backbone has no head)")


@dataclass(frozen=True)
class CoLLMOptions(LLMOptions):
    """CoLLM adds step 2 (CIE) and the tuning strategies of Table V."""

    strategy: str = option("default", choices=STRATEGIES, help="tuning strategy of Table V", groups=(STEP2,))
    step2_lr: float | None = option(None, gt=0, help="step-2 (CIE) learning rate", groups=(STEP2,))
    step2_max_steps: int | None = option(None, ge=1, help="step-2 budget in steps", groups=(STEP2,))
    cie_hidden_factor: int = option(10, ge=1, help="CIE MLP hidden size = factor x encoder dimension",
                                   groups=(CIE_GROUP,))
    # raw: the encoder's embeddings enter the CIE as they are (the paper). layernorm: each one
    # is first layer-normed without parameters, so that user and item embeddings of very
    # different scales (SASRec on ml-100k: norms 11.1 vs 0.05) both reach the MLP at unit scale.
    cie_input: str = option("raw", choices=CIE_INPUTS, help="raw (the paper) or layernorm before the CIE",
                            groups=(CIE_GROUP,))


def preset_name(options: LLMOptions) -> str:
    if options.preset != "auto":
        return options.preset
    if cpu_only_torch():   # a torch without CUDA never sees a GPU: told without importing it
        return "cpu"
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"


def resolved(options: LLMOptions) -> Any:
    """A copy of ``options`` with every ``None`` replaced by the preset's value."""
    preset = preset_name(options)
    values = PRESETS[preset]
    changes = {f.name: values[f.name] for f in dataclasses.fields(options)
               if getattr(options, f.name) is None and f.name in values}
    return dataclasses.replace(options, preset=preset, **changes)


def default_eval_sample(options: LLMOptions) -> int | None:
    return resolved(options).eval_sample
