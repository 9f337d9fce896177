"""TALLRec and CoLLM runs, stage by stage (each stage cached; a rerun resumes at the first
missing one):

encoder pretraining -> step 1 (LoRA on text prompts) -> step 2 (CIE on ID prompts, LoRA
frozen) -> scoring. Strategies (Table V): t1 tunes the encoder in step 2 too; t2 tunes CIE and
a freshly initialised encoder in step 2; t3 is one step tuning LoRA and CIE together.
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from collm_bench.components import options_dict
from collm_bench.encoder import build_encoder, predict, seed_everything
from collm_bench.encoder_stage import encoder_stage_inputs, plugin_source_module, pretrained_encoder
from collm_bench.llm import LLMScorer, add_lora, load_trainable, save_trainable, set_lora_trainable
from collm_bench.methods import MethodContext, MethodOutput
from collm_bench.stages import StageResult, code_identity

from collm_bench_plugins.methods.llm_pipeline import (
    CIE, PromptMaker, id_embedder, inference_scorer, score_rows, train_prompts, tune_meta,
)
from collm_bench_plugins.methods.options import LLMOptions, resolved

STEP1_FIELDS = ("history_titles", "batch_size", "lr", "max_steps", "eval_every", "patience", "warmup_steps",
                "valid_rows", "weight_decay", "lora_r", "lora_alpha", "lora_dropout")
STEP2_FIELDS = ("history_titles", "batch_size", "step2_lr", "step2_max_steps", "eval_every", "patience",
                "warmup_steps", "valid_rows", "weight_decay", "cie_hidden_factor", "strategy", "cie_input")
STEP1_FILE, STEP2_FILE, SCORES_FILE = "step1.safetensors", "step2.safetensors", "scores.npy"


class LLMRun:
    """One method's view of a run: backbone, scorer, prompts and the stage keys' common part."""

    def __init__(self, context: MethodContext, method: str,
                 scorer_factory: Callable[[Any], LLMScorer] = LLMScorer) -> None:
        """``scorer_factory(backbone)`` builds the scorer (ICL reads Yes and No: a subclass)."""
        self.ctx = context
        self.opts = resolved(context.options)
        registry = context.registry
        seed_everything(context.seed)
        started = time.perf_counter()
        self.backbone = registry.get("backbone", context.backbone).load(context.backbone_options)
        self.load_seconds = time.perf_counter() - started
        self.scorer = scorer_factory(self.backbone)
        self.maker = PromptMaker(context.data, context.dataset.items, context.dataset.item_noun, self.backbone,
                                 self.opts.history_titles)
        self.base_inputs = {
            "dataset": context.dataset.sha256, "seed": context.seed, "backbone": context.backbone,
            "backbone_options": options_dict(context.backbone_options),
            # what "auto" resolved to: a bf16 GPU stage must not serve a CPU fp32 run
            "backbone_loaded": {k: self.backbone.summary()[k] for k in ("source", "device", "dtype", "parameters")},
            "code": code_identity(plugin_source_module(registry, "method", method),
                                  plugin_source_module(registry, "backbone", context.backbone)),
        }
        context.progress(f"backbone {self.backbone.name}: {self.backbone.source} on {self.backbone.device} "
                         f"({self.backbone.dtype}){' [random weights: results meaningless]' if self.backbone.meaningless else ''}")

    def fields(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {n: getattr(self.opts, n) for n in names if hasattr(self.opts, n)}

    def stage(self, name: str, inputs: dict[str, Any], compute) -> StageResult:
        return self.ctx.stages.run(name, {**self.base_inputs, **inputs}, compute, self.ctx.progress)

    def step1(self) -> StageResult:
        """LoRA on text-only prompts (TALLRec); the scorer ends with the step-1 weights loaded."""
        def compute(path: Path) -> dict[str, Any]:
            seed_everything(self.ctx.seed)
            add_lora(self.scorer, r=self.opts.lora_r, alpha=self.opts.lora_alpha, dropout=self.opts.lora_dropout)
            result = train_prompts(self.scorer, self.maker, self.ctx.data, with_ids=False, modules={}, embed=None,
                                   opts=self.opts, lr=self.opts.lr, max_steps=self.opts.max_steps,
                                   seed=self.ctx.seed, progress=self.ctx.progress)
            save_trainable(self.scorer, path / STEP1_FILE)
            return tune_meta(result)

        stage = self.stage("llm-step1", {"options": self.fields(STEP1_FIELDS)}, compute)
        load_trainable(self.scorer, stage.path / STEP1_FILE)
        return stage

    def scores(self, model_keys: dict[str, str], *, with_ids: bool, embed=None) -> tuple[np.ndarray, StageResult]:
        """Scores of the evaluation rows for the model identified by ``model_keys`` (cached)."""
        rows = self.ctx.eval_rows
        int8 = bool(self.opts.int8_inference) and self.scorer.device.type == "cpu"

        def compute(path: Path) -> dict[str, Any]:
            scorer = inference_scorer(self.scorer, int8)
            started = time.perf_counter()
            scores = score_rows(scorer, self.maker, rows, with_ids=with_ids, batch_size=self.opts.score_batch_size,
                                embed=embed, progress=self.ctx.progress)
            seconds = time.perf_counter() - started
            np.save(path / SCORES_FILE, scores)
            return {"inference_seconds": round(seconds, 3), "rows": int(len(rows)),
                    "prompts_per_second": round(len(rows) / seconds, 2) if seconds else None, "int8": int8}

        rows_digest = hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16]
        stage = self.stage("llm-scores", {"model": model_keys, "rows": rows_digest, "with_ids": with_ids,
                                          "history_titles": self.opts.history_titles, "int8": int8}, compute)
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
            stages={**{s.name: _stage_summary(s) for s in stages}, "scoring": _stage_summary(score_stage)},
            options=options,
            details={"backbone": self.backbone.summary(),
                     **{s.name: {k: v for k, v in s.meta.items() if k != "seconds"} for s in stages}},
            encoder=encoder, backbone=self.backbone.name, meaningless=self.backbone.meaningless,
        )


def _stage_summary(stage: StageResult) -> dict[str, Any]:
    keep = ("seconds", "train_seconds", "inference_seconds", "prompts_per_second", "int8")
    return {"key": stage.key, "cached": stage.cached, **{k: stage.meta[k] for k in keep if k in stage.meta}}


def run_tallrec(context: MethodContext) -> MethodOutput:
    run = LLMRun(context, "tallrec")
    step1 = run.step1()
    scores, scored = run.scores({"step1": step1.key}, with_ids=False)
    return run.output(scores, scored, [step1])


def run_collm(context: MethodContext) -> MethodOutput:
    ctx = context
    run = LLMRun(ctx, "collm")
    opts, data = run.opts, ctx.data
    history_len = int(getattr(ctx.encoder_options, "history_len", 0) or 0)
    companions: list[tuple[str, MethodOutput]] = []
    stages: list[StageResult] = []

    # Encoder: pretrained (default, t1, t3) or freshly initialised (t2).
    if opts.strategy == "t2":
        seed_everything(ctx.seed)
        encoder = build_encoder(ctx.registry.get("encoder", ctx.encoder), ctx.encoder_options, data)
        encoder_key: Any = {"fresh": encoder_stage_inputs(ctx.registry, ctx.encoder, ctx.encoder_options,
                                                          ctx.dataset.sha256, ctx.seed)}
    else:
        encoder, enc_stage = pretrained_encoder(ctx.registry, ctx.encoder, ctx.encoder_options, data,
                                                dataset_sha256=ctx.dataset.sha256, seed=ctx.seed,
                                                stages=ctx.stages, progress=ctx.progress)
        encoder_key = enc_stage.key
        stages.append(enc_stage)
        started = time.perf_counter()
        enc_scores = predict(encoder, data, ctx.eval_rows, history_len=history_len)
        companions.append((ctx.encoder, MethodOutput(
            scores=enc_scores, train_seconds=float(enc_stage.meta.get("train_seconds", 0.0)),
            inference_seconds=time.perf_counter() - started,
            stages={enc_stage.name: _stage_summary(enc_stage)}, encoder=ctx.encoder)))
    tune_encoder = opts.strategy in ("t1", "t2")
    encoder.to(run.scorer.device)
    encoder.requires_grad_(tune_encoder)
    encoder.eval()

    if opts.strategy != "t3":
        step1 = run.step1()
        stages.append(step1)
        tallrec_scores, tallrec_scored = run.scores({"step1": step1.key}, with_ids=False)
        companions.append(("tallrec", run.output(tallrec_scores, tallrec_scored, [step1], options_cls=LLMOptions)))
        set_lora_trainable(run.scorer, False)
        if run.scorer.head is not None:  # the encoder backbone's answer head is frozen with the LLM
            run.scorer.head.requires_grad_(False)
        upstream = {"step1": step1.key, "encoder": encoder_key}
    else:
        add_lora(run.scorer, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout)
        upstream = {"step1_options": run.fields(STEP1_FIELDS), "encoder": encoder_key}

    seed_everything(ctx.seed)
    cie = CIE(encoder.rep_dim, run.backbone.hidden_size, opts.cie_hidden_factor,
              layer_norm_input=opts.cie_input == "layernorm").to(run.scorer.device)
    modules = {"cie": cie, **({"encoder": encoder} if tune_encoder else {})}
    embed = id_embedder(encoder, cie, data, history_len)

    def compute(path: Path) -> dict[str, Any]:
        result = train_prompts(run.scorer, run.maker, data, with_ids=True, modules=modules, embed=embed, opts=opts,
                               lr=opts.step2_lr, max_steps=opts.step2_max_steps, seed=ctx.seed, progress=ctx.progress)
        save_trainable(run.scorer, path / STEP2_FILE, extra=modules)
        return tune_meta(result)

    step2 = run.stage("llm-step2", {"upstream": upstream, "encoder_name": ctx.encoder,
                                    "options": run.fields(STEP2_FIELDS)}, compute)
    load_trainable(run.scorer, step2.path / STEP2_FILE, extra=modules)
    stages.append(step2)
    encoder.eval()
    scores, scored = run.scores({"step2": step2.key}, with_ids=True, embed=embed)
    output = run.output(scores, scored, stages, encoder=ctx.encoder)
    output.companions = companions
    return output


