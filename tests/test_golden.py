"""Golden tiny runs: every built-in method (and the LLaRA example) on tiny data with each tiny
backbone it supports, pinned to stored predictions.

Code identity (``collm_bench.cache.identity``) says which results a change can move; these say
what they are. A pure refactor leaves every golden file as it is; a change that identity cannot
see (a library upgrade, another platform) shows here as the methods whose scores moved.

Tolerance: every score within ``ATOL`` of the stored one (and so every AUC-like metric within
about the same). The runs are deterministic on one machine, but a float32 sum taken in another
order (other SIMD widths, BLAS kernels, thread counts) differs in its last bits, and a few
optimizer steps carry that forward: measured here, running the whole set with 1 and with 2 torch
threads moved no score by more than ``MEASURED_THREADS_DRIFT``. ``ATOL`` leaves a wide margin over
that and stays far below what any code or prompt change moves (1e-2 and more on these models).
Digests are not used: no run here is promised bitwise across platforms.

Update after a change that moves numbers on purpose (the diff then names the methods that moved):

    COLLM_BENCH_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from collm_bench.api.registry import load_registry
from collm_bench.records.predictions import read_predictions
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset

GOLDEN = Path(__file__).parent / "golden"
ATOL = 1e-4
MEASURED_THREADS_DRIFT = 1e-6
UPDATE = os.environ.get("COLLM_BENCH_UPDATE_GOLDEN") == "1"

LLM = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
       "warmup_steps": "1"}
STEP2 = {"step2_max_steps": "4"}
ENCODER = {"max_epochs": "2", "dim": "8"}
DIN = {"max_epochs": "2", "dim": "6", "history_len": "5"}
CTRL = {"history_titles": "3", "align_epochs": "8", "align_batch_size": "32", "proj_dim": "8"}
CAUSAL = ("tiny-llama", "tiny-qwen2")
ALL = (*CAUSAL, "minilm")   # minilm: an encoder backbone (no language-model head)


def _cases() -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for encoder, options in (("mf", ENCODER), ("lightgcn", ENCODER), ("sasrec", ENCODER), ("din", DIN)):
        cases[encoder] = {"method": encoder, "options": options}
    for backbone in ALL:
        cases[f"tallrec-{backbone}"] = {"method": "tallrec", "backbone": backbone, "options": LLM}
        cases[f"collm-mf-{backbone}"] = {"method": "collm", "encoder": "mf", "backbone": backbone,
                                         "options": {**LLM, **STEP2}, "encoder_options": ENCODER}
        cases[f"prompt4nr-{backbone}"] = {"method": "prompt4nr", "backbone": backbone,
                                          "options": {**LLM, "soft_tokens": "3"}}
        cases[f"ui-token-{backbone}"] = {"method": "ui-token", "backbone": backbone, "options": {**LLM, **STEP2}}
        cases[f"ctrl-{backbone}"] = {"method": "ctrl", "backbone": backbone, "options": CTRL, "encoder_options": DIN}
        cases[f"llara-{backbone}"] = {"method": "llara", "backbone": backbone, "options": LLM,
                                      "encoder_options": ENCODER, "plugin": "llara"}
    for backbone in CAUSAL:   # the untuned LLM needs a language-model head
        cases[f"icl-{backbone}"] = {"method": "icl", "backbone": backbone, "options": {"history_titles": "3"}}
        cases[f"rella-zero-shot-{backbone}"] = {"method": "rella", "backbone": backbone,
                                                "options": {"history_titles": "3", "tuning": "zero-shot"}}
    for backbone in ("tiny-llama", "minilm"):
        cases[f"binllm-{backbone}"] = {"method": "binllm", "backbone": backbone,
                                       "options": {**LLM, **STEP2, "hash_max_epochs": "12", "hash_patience": "5"}}
        cases[f"binllm-ipv4-{backbone}"] = {"method": "binllm", "backbone": backbone,
                                            "options": {**LLM, **STEP2, "hash_max_epochs": "12", "hash_patience": "5",
                                                        "code_text": "ipv4"}}
        cases[f"rella-{backbone}"] = {"method": "rella", "backbone": backbone, "options": LLM}
        cases[f"rella-tallrec-prompt-{backbone}"] = {"method": "rella", "backbone": backbone,
                                                     "options": {**LLM, "prompt": "tallrec"}}
    for encoder, options in (("lightgcn", ENCODER), ("sasrec", ENCODER), ("din", DIN)):
        cases[f"collm-{encoder}-tiny-llama"] = {"method": "collm", "encoder": encoder, "backbone": "tiny-llama",
                                                "options": {**LLM, **STEP2}, "encoder_options": options}
    for strategy in ("t1", "t2", "t3"):
        cases[f"collm-mf-{strategy}-tiny-llama"] = {"method": "collm", "encoder": "mf", "backbone": "tiny-llama",
                                                    "options": {**LLM, **STEP2, "strategy": strategy},
                                                    "encoder_options": ENCODER}
    # T3 on an encoder backbone: its one step creates the answer head and trains it at head_lr
    cases["collm-mf-t3-minilm"] = {"method": "collm", "encoder": "mf", "backbone": "minilm",
                                   "options": {**LLM, **STEP2, "strategy": "t3"}, "encoder_options": ENCODER}
    cases["ensemble-mf-tallrec"] = {"method": "ensemble", "members": ("mf", "tallrec-tiny-llama")}
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """One tiny dataset and one stage cache for every case: a stage is keyed by everything it
    depends on, so sharing one is what a user's runs do, and it keeps this file quick."""
    root = tmp_path_factory.mktemp("golden")
    tiny_dataset(root / "tiny")
    return root


def _run(case: str, registry, root: Path) -> Path:
    spec = CASES[case]
    options = dict(spec.get("options", {}))
    if "members" in spec:
        options["runs"] = ",".join(str(_run(member, registry, root)) for member in spec["members"])
    request = RunRequest(method=spec["method"], dataset=str(root / "tiny"), encoder=spec.get("encoder"),
                         backbone=spec.get("backbone"), out=root / "runs", cache_dir=str(root / "cache"),
                         options=options, encoder_options=dict(spec.get("encoder_options", {})), full_test=True)
    return run(request, registry=registry, progress=lambda m: None).run_dir


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_golden_run_scores_as_stored(case, registry, workspace):
    spec = CASES[case]
    if spec.get("plugin") and spec["plugin"] not in registry.components["method"]:
        pytest.skip(f"the {spec['plugin']} example plugin is not installed")
    frame = read_predictions(_run(case, registry, workspace))
    got = {"case": case, "rows": len(frame),
           "users": frame["user"].tolist(), "items": frame["item"].tolist(),
           "scores": [float(f"{s:.7g}") for s in frame["score"]]}
    path = GOLDEN / f"{case}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=0) + "\n")
        return
    if not path.exists():
        pytest.fail(f"{path.name} is missing: COLLM_BENCH_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py -k {case}")
    stored = json.loads(path.read_text())
    assert (stored["users"], stored["items"]) == (got["users"], got["items"]), f"{case}: other rows scored"
    drift = float(np.max(np.abs(np.asarray(stored["scores"]) - np.asarray(got["scores"]))))
    assert drift <= ATOL, f"{case}: scores moved by up to {drift:.3g} (tolerance {ATOL}); if on purpose, update (module docstring)"


def test_every_method_has_a_golden_run(registry):
    """A method registered without a golden case here would change unseen."""
    covered = {spec["method"] for spec in CASES.values()}
    builtin = {name for name, entry in registry.components["method"].items() if entry.plugin != "llara"}
    builtin |= {name for name in registry.components["encoder"] if name != "popularity"}
    assert builtin <= covered
