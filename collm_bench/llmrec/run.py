"""``LLMRun``: one LLM method's run, built from cached stages (a rerun resumes at the first
missing one). It loads the backbone, makes the scorer and the prompts, runs TALLRec's step 1
(LoRA on text prompts: shared by every method that starts from it), scores evaluation rows, and
assembles the method's output. A method adds stages of its own with ``stage``: each reads named
option groups, and its key is those options (``collm_bench.cache.options``), the inputs it names,
what every stage shares (dataset, seed, backbone as loaded, the scorer's readout) and its code
(the toolkit's and the backbone's, and the method's own for the method's stages).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from collm_bench.api.components import options_dict
from collm_bench.encoders.training import seed_everything
from collm_bench.encoders.stage import plugin_source_module
from collm_bench.llm.scorer import LLMScorer, add_lora, load_trainable, save_trainable
from collm_bench.llmrec.options import PROMPT, SCORER, SCORING, STEP1_READS, resolved
from collm_bench.llmrec.prompt_maker import PromptMaker
from collm_bench.llmrec.training import inference_scorer, score_rows, train_prompts, tune_meta
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.cache.options import StageOptions, option_groups
from collm_bench.cache.stages import StageResult, checkpoint_dir, code_identity, earlier_seconds

STEP1_FILE, SCORES_FILE = "step1.safetensors", "scores.npy"


class LLMRun:
    """One method's view of a run: backbone, scorer, prompts and the stage keys' common part."""

    def __init__(self, context: MethodContext, method: str,
                 scorer_factory: Callable[[Any], LLMScorer] = LLMScorer,
                 maker_factory: Callable[..., PromptMaker] = PromptMaker) -> None:
        """``method`` is the registered name (its plugin's code is part of its own stages' keys);
        ``scorer_factory(backbone)`` builds the scorer (ICL reads Yes and No: a subclass);
        ``maker_factory(data, items, item_noun, backbone, history_titles)`` the prompt maker.
        ``context.options`` must have a ``preset`` resolved by ``collm_bench.llmrec.options``."""
        self.ctx = context
        self.opts = resolved(context.options)
        registry = context.registry
        seed_everything(context.seed)
        started = time.perf_counter()
        self.backbone = registry.get("backbone", context.backbone).load(context.backbone_options)
        self.load_seconds = time.perf_counter() - started
        # How the answer is read (readout, pooling) is part of every stage's key: all use the scorer.
        reads_scorer = any(SCORER in groups for groups in option_groups(type(self.opts)).values())
        self.scorer_options = self.options_for(SCORER).key() if reads_scorer else {}
        if scorer_factory is LLMScorer:
            self.scorer = LLMScorer(self.backbone, **self.scorer_options)
        else:
            self.scorer = scorer_factory(self.backbone)
        maker_args = (context.data, context.dataset.items, context.dataset.item_noun, self.backbone,
                      self.options_for(PROMPT).history_titles)
        self.maker = maker_factory(*maker_args)
        # step 1 is TALLRec's: the toolkit's text prompts, whatever maker the method brings
        self.text_maker = self.maker if maker_factory is PromptMaker else PromptMaker(*maker_args)
        self.base_inputs = {
            "dataset": context.dataset.sha256, "seed": context.seed, "backbone": context.backbone,
            "backbone_options": options_dict(context.backbone_options),
            # what "auto" resolved to: a bf16 GPU stage must not serve a CPU fp32 run
            "backbone_loaded": {k: self.backbone.summary()[k] for k in ("source", "device", "dtype", "parameters")},
            "scorer": self.scorer_options,
        }
        # What joins each stage's key (docs/writing-plugins.md): step 1 is this toolkit's code,
        # the backbone's and a scorer of the method's own; a shared stage (scoring) adds a maker
        # of the method's own; the method's own stages add its plugin module. A scorer or maker
        # counts by its definition (and what it reaches), not by the module it lives in.
        step1 = [__name__, plugin_source_module(registry, "backbone", context.backbone)]
        step1 += [scorer_factory] if scorer_factory is not LLMScorer else []
        shared = step1 + ([maker_factory] if maker_factory is not PromptMaker else [])
        self.step1_code = code_identity(*step1)
        self.shared_code = code_identity(*shared)
        self.method_code = code_identity(*shared, plugin_source_module(registry, "method", method))
        context.progress(f"backbone {self.backbone.name}: {self.backbone.source} on {self.backbone.device} "
                         f"({self.backbone.dtype}){' [random weights: results meaningless]' if self.backbone.meaningless else ''}")

    def options_for(self, *groups: str, stage: str = "") -> StageOptions:
        """The resolved options of ``groups``: what a stage reading them may use."""
        return StageOptions(self.opts, groups, stage=stage or "+".join(groups))

    def stage(self, name: str, reads: tuple[str, ...], inputs: dict[str, Any],
              compute: Callable[[Path, StageOptions], dict[str, Any]], *, shared: bool = False) -> StageResult:
        """Run (or find) stage ``name``: ``compute(path, options)`` writes its files into ``path``
        and returns its metadata; ``options`` holds the option groups ``reads``, whose values are
        part of the key with ``inputs`` (upstream stage keys, anything else the result depends on)
        and the code: the method's (``shared``: only the toolkit's, for stages any method may reuse)."""
        return self._stage(name, reads, inputs, compute, self.shared_code if shared else self.method_code)

    def _stage(self, name: str, reads: tuple[str, ...], inputs: dict[str, Any],
               compute: Callable[[Path, StageOptions], dict[str, Any]], code: dict[str, Any]) -> StageResult:
        options = self.options_for(*reads, stage=name)
        key = {**self.base_inputs, **inputs, "options": options.key(), "code": code}
        return self.ctx.stages.run(name, key, lambda path: compute(path, options), self.ctx.progress)

    def step1(self) -> StageResult:
        """LoRA on text-only prompts (TALLRec's step 1, on the toolkit's own prompts even when the
        method brings a maker, so every method shares it); the scorer ends with the step-1
        weights loaded."""
        def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
            seed_everything(self.ctx.seed)
            add_lora(self.scorer, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout)
            result = train_prompts(self.scorer, self.text_maker, self.ctx.data, with_ids=False, modules={}, embed=None,
                                   opts=opts, lr=opts.lr, max_steps=opts.max_steps, seed=self.ctx.seed,
                                   progress=self.ctx.progress)
            save_trainable(self.scorer, path / STEP1_FILE)
            return tune_meta(result)

        stage = self._stage("llm-step1", STEP1_READS, {}, compute, self.step1_code)
        load_trainable(self.scorer, stage.path / STEP1_FILE)
        return stage

    def scores(self, model_keys: dict[str, Any], *, with_ids: bool, embed=None,
               reads: tuple[str, ...] = (PROMPT, SCORING)) -> tuple[np.ndarray, StageResult]:
        """Scores of the evaluation rows for the model identified by ``model_keys`` (cached)."""
        rows = self.ctx.eval_rows
        opts = self.options_for(*reads, stage="llm-scores")
        int8 = bool(opts.int8_inference) and self.scorer.device.type == "cpu"

        def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
            scorer = inference_scorer(self.scorer, int8)
            started = time.perf_counter()
            scores = score_rows(scorer, self.maker, rows, with_ids=with_ids, batch_size=opts.score_batch_size,
                                embed=embed, progress=self.ctx.progress, resume=checkpoint_dir())
            seconds = earlier_seconds() + time.perf_counter() - started   # every process's scoring
            np.save(path / SCORES_FILE, scores)
            return {"inference_seconds": round(seconds, 3), "rows": int(len(rows)),
                    "prompts_per_second": round(len(rows) / seconds, 2) if seconds else None, "int8": int8}

        rows_digest = hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16]
        stage = self.stage("llm-scores", reads, {"model": model_keys, "rows": rows_digest, "with_ids": with_ids,
                                                 "int8": int8}, compute, shared=True)
        return np.load(stage.path / SCORES_FILE), stage

    def output(self, scores: np.ndarray, score_stage: StageResult, stages: list[StageResult],
               encoder: str | None = None, options_cls: type | None = None) -> MethodOutput:
        """``options_cls`` restricts the recorded options to a method's own (TALLRec's row from
        a CoLLM run records the options a TALLRec run would have)."""
        names = [f.name for f in dataclasses.fields(options_cls or self.opts)]
        options = {k: v for k, v in options_dict(self.opts).items() if k in names}
        train_seconds = sum(float(s.meta.get("train_seconds", 0.0)) for s in stages)
        return MethodOutput(
            scores=scores, train_seconds=train_seconds,
            inference_seconds=float(score_stage.meta["inference_seconds"]),
            stages={**{s.name: stage_summary(s) for s in stages}, "scoring": stage_summary(score_stage)},
            options=options,
            details={"backbone": self.backbone.summary(),
                     **{s.name: {k: v for k, v in s.meta.items() if k != "seconds"} for s in stages}},
            encoder=encoder, backbone=self.backbone.name, meaningless=self.backbone.meaningless,
        )


def stage_summary(stage: StageResult) -> dict[str, Any]:
    """What a record keeps of a stage: its key, whether it came from the cache, its timings."""
    keep = ("seconds", "train_seconds", "inference_seconds", "prompts_per_second", "int8")
    return {"key": stage.key, "cached": stage.cached, **{k: stage.meta[k] for k in keep if k in stage.meta}}
