"""Encoder pretraining as a cached stage, and the encoder used alone as a method.

The same pretrained encoder serves its own leaderboard row (``--method mf``) and CoLLM's CIE
input (``--method collm --encoder mf``): same dataset, options and seed, same stage key.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from collm_bench.api.components import options_dict
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.cache.stages import StageCache, StageResult, code_identity

WEIGHTS = "encoder.safetensors"


def plugin_source_module(registry, kind: str, name: str) -> str:
    """The module whose source registers a component (what it imports is followed from there:
    ``collm_bench.cache.identity``)."""
    plugin = registry.manager.get_plugin(registry.entry(kind, name).plugin)
    return getattr(plugin, "__name__", None) or type(plugin).__module__


def encoder_stage_inputs(registry, name: str, options: Any, dataset_sha256: str, seed: int) -> dict[str, Any]:
    entry = registry.entry("encoder", name)
    return {"dataset": dataset_sha256, "encoder": name, "options": options_dict(options), "seed": seed,
            "plugin": {"name": entry.plugin, "version": entry.version},
            "code": code_identity(__name__, plugin_source_module(registry, "encoder", name))}


def pretrained_encoder(registry, name: str, options: Any, data, *, dataset_sha256: str, seed: int,
                       stages: StageCache, progress: Callable[[str], None]) -> tuple[Any, StageResult]:
    """The encoder trained on ``data`` (from the stage cache when it exists), in eval mode."""
    from safetensors.torch import load_model, save_model

    from collm_bench.encoders.training import build_encoder, fit, seed_everything, training_options

    spec = registry.get("encoder", name)

    def build():
        seed_everything(seed)
        return build_encoder(spec, options, data)

    def compute(path: Path) -> dict[str, Any]:
        model = build()
        result = fit(model, data, **training_options(spec, options), seed=seed, progress=progress)
        save_model(model, str(path / WEIGHTS))
        return {"train_seconds": round(result.train_seconds, 3), "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run, "best_valid_auc": round(result.best_valid_auc, 6),
                "valid_curve": [round(v, 6) for v in result.valid_curve],
                "train_samples_per_second": round(result.samples_per_second, 1)}

    stage = stages.run(f"encoder-{name}", encoder_stage_inputs(registry, name, options, dataset_sha256, seed),
                       compute, progress)
    model = build()
    load_model(model, str(stage.path / WEIGHTS))
    model.eval()
    return model, stage


def run_encoder_method(context: MethodContext) -> MethodOutput:
    """An encoder alone as a leaderboard row: pretrain (or reuse), then score the eval rows."""
    model, stage = pretrained_encoder(context.registry, context.encoder, context.encoder_options, context.data,
                                      dataset_sha256=context.dataset.sha256, seed=context.seed,
                                      stages=context.stages, progress=context.progress)
    return encoder_row(context, model, stage)


def encoder_row(context: MethodContext, model: Any, stage: StageResult) -> MethodOutput:
    """The leaderboard row of a pretrained encoder (``pretrained_encoder``'s model and stage):
    its scores of the eval rows. CoLLM writes it on the way, from the encoder it then maps."""
    from collm_bench.encoders.training import predict

    name = context.encoder
    history_len = int(getattr(context.encoder_options, "history_len", 0) or 0)
    started = time.perf_counter()
    scores = predict(model, context.data, context.eval_rows, history_len=history_len)
    inference_seconds = time.perf_counter() - started
    meta = stage.meta
    return MethodOutput(
        scores=scores, train_seconds=float(meta.get("train_seconds", 0.0)), inference_seconds=inference_seconds,
        stages={stage.name: {"key": stage.key, "cached": stage.cached, "seconds": meta.get("seconds")},
                "inference": {"seconds": round(inference_seconds, 3)}},
        details={k: meta[k] for k in ("best_epoch", "epochs_run", "best_valid_auc", "valid_curve",
                                      "train_samples_per_second") if k in meta},
        encoder=name,
    )
