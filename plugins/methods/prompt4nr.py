"""``prompt4nr``: Prompt4NR (paper [53]) extended to an LLM: learnable soft prompt tokens with
the fixed text template, tuned together with LoRA.

``soft_tokens`` virtual tokens (trainable embeddings of the LLM's hidden size, started from
the embeddings of randomly drawn vocabulary tokens) are inserted right after the prompt's
opening special token (``<s>`` / ``[CLS]``), before ``#Question:``: a task prefix that every
later position, the answer's included, attends to (P-tuning / prompt-tuning style). They are
tuned with LoRA exactly as TALLRec's step 1 (same loop, presets, scoring and loss), so that
this row differs from ``tallrec`` by the soft prompt alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option

from collm_bench.llmrec import LLMOptions, default_eval_sample, resolved

SOFT_PROMPT = "soft-prompt"  # the option group of the soft prompt (read by the tuning stage)


@dataclass(frozen=True)
class Prompt4NROptions(LLMOptions):
    """TALLRec's options plus the number of soft prompt tokens."""

    soft_tokens: int = option(10, ge=1, help="soft prompt tokens", groups=(SOFT_PROMPT,))


def run(context):
    from collm_bench_plugins.methods.llm_baselines import run_prompt4nr

    return run_prompt4nr(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="prompt4nr", run=run, options=Prompt4NROptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="Prompt4NR (LLM): trainable soft prompt tokens before the fixed text template, tuned with LoRA",
    ))
