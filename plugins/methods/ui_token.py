"""``ui-token``: the CoLLM pipeline with the CIE replaced by a new vocabulary token per user and
per item (Table IV, "w/ UI-token").

Step 1 is TALLRec's (LoRA on text prompts), shared with ``tallrec`` and ``collm`` through the
stage cache. Step 2 freezes LoRA and trains two embedding tables (one row per user, one per
item, of the LLM's hidden size) whose rows are written into the ``<UserID>`` /
``<TargetItemID>`` placeholders of the ID prompt. This equals adding the tokens to the
vocabulary with trainable input embeddings (the answer is read from the Yes logit, so their
output embeddings would never be used). New rows start as transformers' ``mean_resizing``
starts new tokens: drawn around the mean of the vocabulary's embeddings, at their spread.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option

from collm_bench.llmrec import STEP2, LLMOptions, default_eval_sample, resolved


@dataclass(frozen=True)
class UITokenOptions(LLMOptions):
    """TALLRec's options (step 1) plus step 2's budget (None: the preset's, as CoLLM's)."""

    step2_lr: float | None = option(None, gt=0, help="step-2 learning rate of the token tables",
                                     groups=(STEP2,))
    step2_max_steps: int | None = option(None, ge=1, help="step-2 budget in steps", groups=(STEP2,))


def run(context):
    from collm_bench_plugins.methods.llm_baselines import run_ui_token

    return run_ui_token(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="ui-token", run=run, options=UITokenOptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="CoLLM ablation w/ UI-token: trainable per-user and per-item token embeddings instead of the CIE",
    ))
