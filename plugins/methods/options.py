"""Options of the LLM methods (tallrec, collm) and their two presets.

``paper``: the authors' settings (REFERENCE.md "Training"), for GPUs. ``cpu``: a step budget
that keeps the embedded default (MF + TALLRec + CoLLM-MF on ml-100k with MiniLM) within
minutes on a 2-core CPU. ``auto`` picks ``paper`` when CUDA is available, else ``cpu``.
A field left at ``None`` takes its preset's value; any field can be set explicitly.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(history_titles=10, batch_size=32, lr=1e-3, step2_lr=1e-3, max_steps=20_000,
                  step2_max_steps=20_000, eval_every=50, patience=20, warmup_steps=50,
                  valid_rows=None, eval_sample=None, int8_inference=False),
    # 32 = 16 per GPU x 2 GPUs of the authors' runs.
    "cpu": dict(history_titles=5, batch_size=16, lr=1e-3, step2_lr=1e-3, max_steps=150,
                step2_max_steps=100, eval_every=50, patience=20, warmup_steps=10,
                valid_rows=400, eval_sample=3000, int8_inference=False),
}
STRATEGIES = ("default", "t1", "t2", "t3")
CIE_INPUTS = ("raw", "layernorm")


@dataclass(frozen=True)
class LLMOptions:
    """Options shared by the LLM methods (None: the preset's value)."""

    preset: str = "auto"
    history_titles: int | None = None     # last N positive titles in the prompt
    batch_size: int | None = None
    lr: float | None = None               # step 1 (LoRA)
    max_steps: int | None = None          # step 1 budget
    eval_every: int | None = None         # steps between validations (an "epoch" of the authors)
    patience: int | None = None           # validations without gain before stopping
    warmup_steps: int | None = None
    valid_rows: int | None = None         # rows of valid_small used for validation (None: all)
    eval_sample: int | None = None        # default test sample (whole users); None: all test rows
    int8_inference: bool | None = None    # score test rows with an int8 dynamic-quantized copy (CPU)
    weight_decay: float = 1e-3
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    score_batch_size: int = 64

    def __post_init__(self) -> None:
        if self.preset not in ("auto", *PRESETS):
            raise ValueError(f"preset must be auto, {', '.join(PRESETS)}; got {self.preset!r}")


@dataclass(frozen=True)
class CoLLMOptions(LLMOptions):
    """CoLLM adds step 2 (CIE) and the tuning strategies of Table V."""

    strategy: str = "default"             # default | t1 | t2 | t3 (Table V)
    step2_lr: float | None = None
    step2_max_steps: int | None = None
    cie_hidden_factor: int = 10           # MLP hidden = factor x encoder dimension
    # raw: the encoder's embeddings enter the CIE as they are (the paper). layernorm: each one
    # is first layer-normed without parameters, so that user and item embeddings of very
    # different scales (SASRec on ml-100k: norms 11.1 vs 0.05) both reach the MLP at unit scale.
    cie_input: str = "raw"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        if self.cie_input not in CIE_INPUTS:
            raise ValueError(f"cie_input must be one of {', '.join(CIE_INPUTS)}; got {self.cie_input!r}")


def preset_name(options: LLMOptions) -> str:
    if options.preset != "auto":
        return options.preset
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
