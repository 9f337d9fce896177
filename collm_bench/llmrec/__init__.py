"""The LLM-rec toolkit: what turns a backbone and a collaborative encoder into an LLM method.

Every built-in LLM method (TALLRec, CoLLM, ICL, Prompt4NR, UI-token, BinLLM, ReLLa) is written on it, and so
can yours (``docs/writing-plugins.md``, "Writing an LLM method"; ``examples/collm-bench-llara``):

- options and presets: ``LLMOptions`` / ``CoLLMOptions`` (subclass them), ``resolved``,
  ``default_eval_sample``, and the option groups (``PROMPT``, ``TUNING``, ``LORA``, ``STEP1``,
  ``STEP2``, ``CIE_GROUP``, ``SCORING``, ``SCORER``) a stage reads;
- prompts: ``PromptMaker`` (override ``prompts`` for templates with any number of ID slots);
  ``TextPromptMaker`` for prompts that carry per-row text and no slot (its hooks ``history``,
  ``history_text``, ``fields``);
- ``CIE`` and ``id_embedder`` (an encoder's user and item representations into two slots);
- the tuning loop on prompts (``train_prompts``, with a curriculum hook) and scoring
  (``score_rows``), with ``tune_meta`` for a stage's metadata;
- ``LLMRun``: the backbone, scorer and prompts of one run, its cached stages (``stage``, keyed by
  the option groups it reads), TALLRec's ``step1``, ``scores`` and the method's ``output``.

Importing this package stays light (options only); the rest loads torch when first used.
"""
from __future__ import annotations

from collm_bench._util.lazy import exports
from collm_bench.llmrec.options import (CIE_GROUP, CIE_INPUTS, HEAD, LORA, POOLINGS, PRESETS, PROMPT, READOUTS, SCORER,
                                        SCORING, STEP1, STEP1_READS, STEP2, STRATEGIES, TUNING, CoLLMOptions,
                                        LLMOptions, default_eval_sample, preset_name, resolved)

_LAZY = {
    "PromptMaker": "collm_bench.llmrec.prompt_maker", "TextPromptMaker": "collm_bench.llmrec.text_prompts",
    "CIE": "collm_bench.llmrec.cie", "id_embedder": "collm_bench.llmrec.cie", "batch_rows": "collm_bench.llmrec.cie",
    "train_prompts": "collm_bench.llmrec.training", "score_rows": "collm_bench.llmrec.training",
    "valid_rows": "collm_bench.llmrec.training", "tune_meta": "collm_bench.llmrec.training",
    "inference_scorer": "collm_bench.llmrec.training",
    "LLMRun": "collm_bench.llmrec.run", "stage_summary": "collm_bench.llmrec.run",
}

__all__ = [
    "CIE_GROUP", "CIE_INPUTS", "HEAD", "LORA", "POOLINGS", "PRESETS", "PROMPT", "READOUTS", "SCORER", "SCORING", "STEP1",
    "STEP1_READS", "STEP2",
    "STRATEGIES", "TUNING", "CoLLMOptions", "LLMOptions", "default_eval_sample", "preset_name", "resolved",
    *_LAZY,
]


__getattr__, __dir__ = exports(__name__, _LAZY)   # dir() and pydoc list the lazy names too
