"""``ctrl``: CTRL(DIN) (paper [23]): a collaborative model aligned with a language model, then
fine-tuned alone; the collaborative model predicts.

1. Text: the chosen backbone, frozen, reads each alignment row's text prompt (TALLRec's
   template); its representation is the mean of the last hidden states for an encoder
   backbone (how MiniLM's sentence embeddings are made) and the last position's final hidden
   state for a causal one (the state that would read the answer). Cached: computed once.
2. Alignment: a freshly initialised encoder (DIN by default) and two linear projection heads
   are trained with a symmetric InfoNCE loss (in-batch negatives, cosine similarity over a
   temperature) that pulls each row's collaborative representation (the encoder's
   ``representations``: user and item, concatenated) towards its own prompt's.
3. Fine-tuning: the aligned encoder is trained with BCE on the labels by the encoders' own
   loop (``collm_bench.encoder.fit``, the encoder's options); the heads are dropped.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl

from collm_bench_plugins.methods.options import preset_name

# ``cpu``: a sample of train rows for the text stage keeps MiniLM's forward passes to ~1 min.
CTRL_PRESETS = {"paper": {"history_titles": 10, "align_rows": None},
                "cpu": {"history_titles": 5, "align_rows": 4000}}


@dataclass(frozen=True)
class CTRLOptions:
    """Alignment options (None: the preset's value). The fine-tuning stage takes the encoder's
    options (``--encoder-set``)."""

    preset: str = "auto"                  # auto | paper | cpu
    history_titles: int | None = None     # last N positive titles in the prompt
    align_rows: int | None = None         # train rows aligned (a seeded sample; None: all)
    align_epochs: int = 20
    align_lr: float = 1e-3
    align_batch_size: int = 256           # in-batch negatives: batch - 1 per row
    temperature: float = 0.1
    proj_dim: int = 128                   # shared space of the two projection heads
    text_batch_size: int = 64

    def __post_init__(self) -> None:
        if self.preset not in ("auto", *CTRL_PRESETS):
            raise ValueError(f"preset must be auto, {', '.join(CTRL_PRESETS)}; got {self.preset!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.align_batch_size < 2:
            raise ValueError("align_batch_size must be >= 2 (in-batch negatives)")


def resolved(options: CTRLOptions) -> CTRLOptions:
    """``options`` with ``preset`` resolved and every ``None`` set from it (what is recorded)."""
    preset = preset_name(options)
    changes = {k: v for k, v in CTRL_PRESETS[preset].items() if getattr(options, k) is None}
    return dataclasses.replace(options, preset=preset, **changes)


def run(context):
    from collm_bench_plugins.methods.ctrl_run import run_ctrl

    return run_ctrl(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="ctrl", run=run, options=CTRLOptions, encoder="din", backbone="minilm", resolve_options=resolved,
        description="CTRL(DIN): DIN aligned with a frozen LM's prompt representation (InfoNCE), "
                    "then fine-tuned with BCE; DIN predicts",
    ))
