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
   loop (``collm_bench.encoders.training.fit``, the encoder's options); the heads are dropped.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option

from collm_bench.llmrec import preset_name

# ``cpu``: a sample of train rows for the text stage keeps MiniLM's forward passes to ~1 min.
# Option groups: what the text stage and the alignment stage read (collm_bench.cache.options).
TEXT, ALIGN = "text", "align"
CTRL_PRESETS = {"paper": {"history_titles": 10, "align_rows": None},
                "cpu": {"history_titles": 5, "align_rows": 4000}}


@dataclass(frozen=True)
class CTRLOptions:
    """Alignment options (None: the preset's value). The fine-tuning stage takes the encoder's
    options (``--encoder-set``)."""

    preset: str = option("auto", choices=("auto", *CTRL_PRESETS), help="auto: paper on a GPU, else cpu")
    history_titles: int | None = option(None, ge=0, help="last N positive titles in the prompt", groups=(TEXT,))
    align_rows: int | None = option(None, ge=2, help="train rows aligned (a seeded sample; none: all)",
                                    groups=(TEXT,))
    align_epochs: int = option(20, ge=1, help="alignment epochs", groups=(ALIGN,))
    align_lr: float = option(1e-3, gt=0, help="alignment learning rate", groups=(ALIGN,))
    align_batch_size: int = option(256, ge=2, help="rows per alignment batch (in-batch negatives: batch - 1)",
                                  groups=(ALIGN,))
    temperature: float = option(0.1, gt=0, help="InfoNCE temperature", groups=(ALIGN,))
    proj_dim: int = option(128, ge=1, help="shared space of the two projection heads", groups=(ALIGN,))
    text_batch_size: int = option(64, ge=1, help="prompts per batch of the text stage", groups=(TEXT,))


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
