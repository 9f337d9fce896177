"""TALLRec and CoLLM on the LLM-rec toolkit (``collm_bench.llmrec``), stage by stage:

encoder pretraining -> step 1 (LoRA on text prompts) -> step 2 (CIE on ID prompts, LoRA
frozen) -> scoring. Strategies (Table V): t1 tunes the encoder in step 2 too; t2 tunes CIE and
a freshly initialised encoder in step 2; t3 is one step tuning LoRA and CIE together.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from collm_bench.encoders.training import build_encoder, seed_everything
from collm_bench.encoders.stage import encoder_row, encoder_stage_inputs, pretrained_encoder
from collm_bench.llm.scorer import add_lora, load_trainable, save_trainable, set_lora_trainable
from collm_bench.llmrec import (CIE, CIE_GROUP, HEAD, LLMOptions, LLMRun, LORA, PROMPT, STEP2, TUNING, id_embedder,
                                train_prompts, tune_meta)
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.cache.options import StageOptions
from collm_bench.cache.stages import StageResult

STEP2_FILE = "step2.safetensors"


def run_tallrec(context: MethodContext) -> MethodOutput:
    run = LLMRun(context, "tallrec")
    step1 = run.step1()
    scores, scored = run.scores({"step1": step1.key}, with_ids=False)
    return run.output(scores, scored, [step1])


def run_collm(context: MethodContext) -> MethodOutput:
    ctx = context
    run = LLMRun(ctx, "collm")
    strategy = run.options_for(STEP2).strategy
    data = ctx.data
    history_len = int(getattr(ctx.encoder_options, "history_len", 0) or 0)
    companions: list[tuple[str, MethodOutput]] = []
    stages: list[StageResult] = []

    # Encoder: pretrained (default, t1, t3) or freshly initialised (t2).
    if strategy == "t2":
        seed_everything(ctx.seed)
        encoder = build_encoder(ctx.registry.get("encoder", ctx.encoder), ctx.encoder_options, data)
        encoder_key: Any = {"fresh": encoder_stage_inputs(ctx.registry, ctx.encoder, ctx.encoder_options,
                                                          ctx.dataset.sha256, ctx.seed)}
    else:
        # The pretrained encoder (loaded once), and its own row as its own method writes it (same
        # training details and timings as a direct run).
        encoder, enc_stage = pretrained_encoder(ctx.registry, ctx.encoder, ctx.encoder_options, data,
                                                dataset_sha256=ctx.dataset.sha256, seed=ctx.seed,
                                                stages=ctx.stages, progress=ctx.progress)
        companions.append((ctx.encoder, encoder_row(ctx, encoder, enc_stage)))
        encoder_key = enc_stage.key
        stages.append(enc_stage)
    tune_encoder = strategy in ("t1", "t2")
    encoder.to(run.scorer.device)
    encoder.requires_grad_(tune_encoder)
    encoder.eval()

    reads = (PROMPT, TUNING, STEP2, CIE_GROUP)
    if strategy != "t3":
        step1 = run.step1()
        stages.append(step1)
        tallrec_scores, tallrec_scored = run.scores({"step1": step1.key}, with_ids=False)
        companions.append(("tallrec", run.output(tallrec_scores, tallrec_scored, [step1], options_cls=LLMOptions)))
        set_lora_trainable(run.scorer, False)
        if run.scorer.head is not None:  # the encoder backbone's answer head is frozen with the LLM
            run.scorer.head.requires_grad_(False)
        upstream = {"step1": step1.key, "encoder": encoder_key}
    else:  # one step: LoRA and an encoder backbone's answer head are created (and tuned) here, the
        reads += (LORA, HEAD)  # head at step 1's head_lr, as TALLRec's step 1 trains it
        upstream = {"encoder": encoder_key}
    modules: dict[str, Any] = {}

    def compute(path: Path, opts: StageOptions) -> dict[str, Any]:
        result = train_prompts(run.scorer, run.maker, data, with_ids=True, modules=modules, embed=embed, opts=opts,
                               lr=opts.step2_lr, max_steps=opts.step2_max_steps, seed=ctx.seed, progress=ctx.progress)
        save_trainable(run.scorer, path / STEP2_FILE, extra=modules)
        return tune_meta(result)

    opts = run.options_for(*reads, stage="llm-step2")
    if strategy == "t3":
        add_lora(run.scorer, r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout)
    seed_everything(ctx.seed)
    cie = CIE(encoder.rep_dim, run.backbone.hidden_size, opts.cie_hidden_factor,
              layer_norm_input=opts.cie_input == "layernorm").to(run.scorer.device)
    modules.update({"cie": cie, **({"encoder": encoder} if tune_encoder else {})})
    embed = id_embedder(encoder, cie, data, history_len)
    step2 = run.stage("llm-step2", reads, {"upstream": upstream, "encoder_name": ctx.encoder}, compute)
    load_trainable(run.scorer, step2.path / STEP2_FILE, extra=modules)
    stages.append(step2)
    encoder.eval()
    scores, scored = run.scores({"step2": step2.key}, with_ids=True, embed=embed)
    output = run.output(scores, scored, stages, encoder=ctx.encoder)
    output.companions = companions
    return output
