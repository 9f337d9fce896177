"""GPU readiness: the causal path on models built in code, one line per check.

Run by ``benchmarks/gpu_check.sh`` on a CUDA machine with no network and no model weights:
tiny-llama and tiny-qwen2 (random weights built from a config) in bf16 and fp16, each through
a whole CoLLM-MF run (LoRA steps of step 1 and step 2, scoring) with its scores compared to a
float32 run of the same model; a one-process torchrun run (NCCL); bitsandbytes 8-bit loading
where it is installed. ``GPU_CHECK_DEVICE=cpu`` runs the same checks on a CPU (to test this
script; numbers there say nothing about a GPU).

Each line: ``PASS|FAIL|SKIP <check>: <detail>``; the exit code is the number of failures.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

FAST = {"preset": "cpu", "max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3",
        "valid_rows": "12", "warmup_steps": "1", "step2_max_steps": "4"}
FAST_MF = {"max_epochs": "2", "dim": "8"}
DEVICE = os.environ.get("GPU_CHECK_DEVICE", "cuda")
failures = 0


def line(status: str, check: str, detail: str) -> None:
    global failures
    failures += status == "FAIL"
    print(f"{status} {check}: {detail}", flush=True)


def collm_run(dataset: Path, root: Path, backbone: str, dtype: str):
    from collm_bench.records.store import metrics_match
    from collm_bench.records.predictions import metrics_from_predictions
    from collm_bench.runner import RunRequest, run

    result = run(RunRequest(method="collm", dataset=str(dataset), backbone=backbone, out=root / f"runs-{dtype}",
                            cache_dir=str(root / f"cache-{dtype}"), options=FAST, encoder_options=FAST_MF,
                            backbone_options={"device": DEVICE, "dtype": dtype}), progress=lambda m: None)
    assert metrics_match(result.record["metrics"], metrics_from_predictions(result.run_dir)), "record != predictions"
    import pandas as pd

    scores = pd.read_csv(result.run_dir / "predictions.csv")["score"].to_numpy()
    return result.record, scores


def main() -> int:
    import torch

    from collm_bench.testing import tiny_dataset

    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        line("FAIL", "cuda", "torch sees no CUDA device")
        return 1
    name = torch.cuda.get_device_name(0) if DEVICE.startswith("cuda") else "cpu"
    line("PASS", "device", f"{name}, torch {torch.__version__}")
    root = Path(tempfile.mkdtemp(prefix="collm-gpu-check-"))
    dataset = root / "tiny"
    tiny_dataset(dataset)
    for backbone in ("tiny-llama", "tiny-qwen2"):
        reference = None
        for dtype in ("float32", "bfloat16", "float16"):
            check = f"{backbone} {dtype} collm run (LoRA steps, scoring)"
            try:
                started = time.perf_counter()
                record, scores = collm_run(dataset, root / backbone, backbone, dtype)
                if not np.isfinite(scores).all():
                    raise AssertionError("non-finite scores")
                detail = (f"{len(scores)} rows, AUC {record['metrics']['overall']['auc']:.4f}, "
                          f"{time.perf_counter() - started:.1f} s")
                if reference is None:
                    reference = scores
                else:  # the same seed in lower precision: close to float32, not equal
                    corr = float(np.corrcoef(reference, scores)[0, 1])
                    diff = float(np.abs(reference - scores).max())
                    detail += f", vs float32: corr {corr:.4f}, max |diff| {diff:.3g}"
                    if not corr > 0.9:
                        raise AssertionError(detail)
                line("PASS", check, detail)
            except Exception as exc:  # noqa: BLE001 - one line per check, the rest goes on
                line("FAIL", check, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                traceback.print_exc(file=sys.stderr)
    torchrun_check(dataset, root)
    bitsandbytes_check()
    print(f"{failures} failed", flush=True)
    return failures


def torchrun_check(dataset: Path, root: Path) -> None:
    check = "torchrun --nproc_per_node 1 (tallrec, tiny-llama, bf16)"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "-m", "collm_bench", "run",
            "--method", "tallrec", "--backbone", "tiny-llama", "--dataset", str(dataset),
            "--out", str(root / "torchrun-runs"), "--cache-dir", str(root / "torchrun-cache"),
            "--backbone-set", f"device={DEVICE}", "--backbone-set", "dtype=bfloat16"]
    for key in ("max_steps", "eval_every", "batch_size", "history_titles", "valid_rows", "warmup_steps"):
        args += ["--set", f"{key}={FAST[key]}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    records = list((root / "torchrun-runs").glob("*/record.json"))
    if proc.returncode == 0 and records:
        line("PASS", check, f"record {records[0].parent.name}")
    else:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        line("FAIL", check, f"exit {proc.returncode}: {tail[0]}")


def bitsandbytes_check() -> None:
    check = "bitsandbytes 8-bit load and score (tiny-llama)"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        line("SKIP", check, "bitsandbytes is not installed")
        return
    if not DEVICE.startswith("cuda"):
        line("SKIP", check, "needs CUDA")
        return
    try:
        import torch

        from collm_bench.llm.backbone import BackboneOptions
        from collm_bench.llm.scorer import LLMScorer
        from collm_bench.api.registry import get_registry

        spec = get_registry().get("backbone", "tiny-llama")
        backbone = spec.load(BackboneOptions(device=DEVICE, quantization="8bit"))
        scorer = LLMScorer(backbone)
        ids = torch.tensor([[backbone.tokenizer.bos_token_id or 1, 5, 6, 7]], device=DEVICE)
        with torch.inference_mode():
            logit = scorer(ids, torch.ones_like(ids))
        if not torch.isfinite(logit).all():
            raise AssertionError("non-finite logit")
        line("PASS", check, f"logit {float(logit[0]):.4f}")
    except Exception as exc:  # noqa: BLE001
        line("FAIL", check, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


if __name__ == "__main__":
    sys.exit(main())
