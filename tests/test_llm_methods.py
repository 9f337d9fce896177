"""TALLRec and CoLLM end to end on tiny data with a random tiny Llama (numbers meaningless)."""
import json
import numpy as np
import pytest
from safetensors.torch import load_file

from collm_bench.api.registry import load_registry
from collm_bench.records.store import metrics_match
from collm_bench.records.predictions import metrics_from_predictions
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1"}
FAST_STEP2 = {"step2_max_steps": "4"}
FAST_MF = {"max_epochs": "2", "dim": "8"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture
def dataset_dir(tmp_path):
    tiny_dataset(tmp_path / "tiny")
    return str(tmp_path / "tiny")


def _run(registry, dataset_dir, tmp_path, cache="cache", method="collm", options=None, out_name="runs", **kw):
    request = RunRequest(method=method, dataset=dataset_dir, backbone="tiny-llama", out=tmp_path / out_name,
                         cache_dir=str(tmp_path / cache), options={**FAST, **(FAST_STEP2 if method == "collm" else {}), **(options or {})},
                         encoder_options=FAST_MF if method == "collm" else {}, **kw)
    return run(request, registry=registry, progress=lambda m: None)


def test_collm_writes_its_row_and_the_encoder_and_tallrec_rows(registry, dataset_dir, tmp_path):
    result = _run(registry, dataset_dir, tmp_path)
    labels = {result.record["method"]} | {r["method"] for _, r in result.companions}
    assert labels == {"collm", "mf", "tallrec"}
    for run_dir, record in [(result.run_dir, result.record)] + result.companions:
        assert metrics_match(record["metrics"], metrics_from_predictions(run_dir))
    assert result.record["meaningless"] and result.record["backbone"] == "tiny-llama"
    stages = result.record["timings"]["stages"]
    assert {"encoder-mf", "llm-step1", "llm-step2", "scoring"} <= set(stages)
    timings = result.record["timings"]
    assert timings["prompts_per_second"] == stages["scoring"]["prompts_per_second"] > 0
    mf = next(r for _, r in result.companions if r["method"] == "mf")
    assert mf["timings"]["prompts_per_second"] is None  # MF scores no prompts


@pytest.mark.parametrize(("strategy", "rows"), [(None, {"mf", "tallrec"}), ("t2", {"tallrec"}), ("t3", {"mf"})])
def test_collm_writes_the_rows_it_declares(registry, dataset_dir, tmp_path, strategy, rows):
    """The plan lists the companion rows by run id (a suite shows them, a refresh keeps them):
    exactly those the run writes, under every strategy."""
    from collm_bench.runner import plan

    options = {**FAST, **FAST_STEP2, **({"strategy": strategy} if strategy else {})}
    request = RunRequest(method="collm", dataset=dataset_dir, backbone="tiny-llama", out=tmp_path / "runs",
                         cache_dir=str(tmp_path / "cache"), options=options, encoder_options=FAST_MF)
    planned = plan(request, registry=registry)
    said = []
    result = run(request, registry=registry, progress=said.append, planned=planned)
    assert sorted(planned.companions) == sorted(path.name for path, _ in result.companions)
    assert {r["method"] for _, r in result.companions} == rows
    assert not [line for line in said if line.startswith("warning")]


def test_a_method_that_writes_rows_it_does_not_declare_is_told(registry, dataset_dir, tmp_path, monkeypatch):
    import dataclasses

    entry = registry.components["method"]["collm"]
    monkeypatch.setitem(registry.components["method"], "collm",
                        dataclasses.replace(entry, spec=dataclasses.replace(entry.spec, companions=None)))
    said = []
    request = RunRequest(method="collm", dataset=dataset_dir, backbone="tiny-llama", out=tmp_path / "runs",
                         cache_dir=str(tmp_path / "cache"), options={**FAST, **FAST_STEP2}, encoder_options=FAST_MF)
    run(request, registry=registry, progress=said.append)
    assert [line for line in said if "declares none" in line and "MethodSpec.companions" in line]


def test_collm_loads_its_encoder_once(registry, dataset_dir, tmp_path, monkeypatch):
    """The encoder's own row and the CIE's input are the same loaded encoder, and the record says
    whether this run trained it (then again from the cache: reused)."""
    import safetensors.torch

    loads = []
    real = safetensors.torch.load_model
    monkeypatch.setattr(safetensors.torch, "load_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    first = _run(registry, dataset_dir, tmp_path)
    assert len(loads) == 1 and not first.record["timings"]["stages"]["encoder-mf"]["cached"]
    again = _run(registry, dataset_dir, tmp_path, out_name="again")
    assert len(loads) == 2 and again.record["timings"]["stages"]["encoder-mf"]["cached"]


def test_collm_writes_the_encoder_row_as_the_encoders_own_run_does(registry, dataset_dir, tmp_path):
    collm = _run(registry, dataset_dir, tmp_path)
    assert not collm.record["timings"]["stages"]["encoder-mf"]["cached"]  # this run computed it
    (mf_dir, companion), = [(d, r) for d, r in collm.companions if r["method"] == "mf"]
    direct = run(RunRequest(method="mf", dataset=dataset_dir, out=tmp_path / "direct", cache_dir=str(tmp_path / "other"),
                            options=FAST_MF), registry=registry, progress=lambda m: None)
    assert companion["training"]["epochs_run"] == 2 and companion["training"]["valid_curve"]
    assert companion["training"]["best_valid_auc"] == direct.record["training"]["best_valid_auc"]
    assert set(companion["training"]) == set(direct.record["training"])
    assert set(companion["timings"]["stages"]) == set(direct.record["timings"]["stages"]) == {"encoder-mf", "inference"}
    assert companion["metrics"] == direct.record["metrics"]


def test_step2_leaves_every_lora_weight_bit_identical(registry, dataset_dir, tmp_path):
    _run(registry, dataset_dir, tmp_path)
    step1 = load_file(next((tmp_path / "cache" / "llm-step1").glob("*/step1.safetensors")))
    step2 = load_file(next((tmp_path / "cache" / "llm-step2").glob("*/step2.safetensors")))
    lora = [k for k in step1 if "lora_" in k]
    assert lora and all(k in step2 for k in lora)
    for key in lora:
        assert step1[key].dtype == step2[key].dtype and bool((step1[key] == step2[key]).all()), key
    assert any(k.startswith("cie.") for k in step2)
    # the comparison is not between zeros: LoRA A starts random
    assert all(bool(step1[k].abs().sum() > 0) for k in lora if "lora_A" in k)


def test_same_seed_same_metrics(registry, dataset_dir, tmp_path):
    a = _run(registry, dataset_dir, tmp_path, cache="a", method="tallrec")
    b = _run(registry, dataset_dir, tmp_path, cache="b", method="tallrec")
    assert not b.record["timings"]["stages"]["llm-step1"]["cached"]
    assert a.record["metrics"] == b.record["metrics"]


def test_step1_is_shared_across_encoders_and_with_tallrec(registry, dataset_dir, tmp_path):
    first = _run(registry, dataset_dir, tmp_path)
    assert not first.record["timings"]["stages"]["llm-step1"]["cached"]
    other = run(RunRequest(method="collm", encoder="lightgcn", dataset=dataset_dir, backbone="tiny-llama",
                           out=tmp_path / "runs", cache_dir=str(tmp_path / "cache"), options={**FAST, **FAST_STEP2},
                           encoder_options={"max_epochs": "2", "dim": "8"}),
                registry=registry, progress=lambda m: None)
    stages = other.record["timings"]["stages"]
    assert stages["llm-step1"]["cached"] and not stages["llm-step2"]["cached"]
    assert "encoder-lightgcn" in stages
    # the TALLRec row it reproduced from cached stages keeps the record of the run that computed them
    (tallrec_dir, kept), = [(d, r) for d, r in other.companions if r["method"] == "tallrec"]
    written = next(r for _, r in first.companions if r["method"] == "tallrec")
    on_disk = json.loads((tallrec_dir / "record.json").read_text())
    assert kept["date"] == on_disk["date"] == written["date"] and kept["run_id"] == written["run_id"]
    tallrec = _run(registry, dataset_dir, tmp_path, method="tallrec")
    # the direct run is the same row as the companion: same config, same run directory
    assert tallrec.run_dir in [path for path, r in first.companions if r["method"] == "tallrec"]
    assert tallrec.record["config"]["options"]["preset"] == "cpu"  # recorded resolved, not "auto"
    assert tallrec.record["timings"]["stages"]["llm-step1"]["cached"]
    assert tallrec.record["timings"]["stages"]["scoring"]["cached"]  # scored already as a companion


def test_interrupted_run_resumes_at_the_first_unfinished_stage(registry, dataset_dir, tmp_path, monkeypatch):
    import collm_bench_plugins.methods.llm_runs as llm_runs

    real = llm_runs.train_prompts

    def dies_in_step2(*args, with_ids, **kwargs):
        if with_ids:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during step 2
        return real(*args, with_ids=with_ids, **kwargs)

    monkeypatch.setattr(llm_runs, "train_prompts", dies_in_step2)
    with pytest.raises(KeyboardInterrupt):
        _run(registry, dataset_dir, tmp_path)
    monkeypatch.setattr(llm_runs, "train_prompts", real)
    resumed = _run(registry, dataset_dir, tmp_path)
    stages = resumed.record["timings"]["stages"]
    assert stages["encoder-mf"]["cached"] and stages["llm-step1"]["cached"]
    assert not stages["llm-step2"]["cached"] and not stages["scoring"]["cached"]


@pytest.mark.parametrize("strategy", ["t1", "t2", "t3"])
def test_strategies_run(registry, dataset_dir, tmp_path, strategy):
    result = _run(registry, dataset_dir, tmp_path, options={"strategy": strategy})
    stages = result.record["timings"]["stages"]
    assert ("llm-step1" in stages) == (strategy != "t3")
    assert ("encoder-mf" in stages) == (strategy != "t2")
    assert np.isfinite(result.record["metrics"]["overall"]["auc"])


def test_layer_normed_cie_input_ignores_the_embeddings_scale(registry, dataset_dir, tmp_path):
    import torch

    from collm_bench.errors import UserError
    from collm_bench.llmrec import CIE

    torch.manual_seed(0)
    x = torch.randn(3, 8)
    normed, raw = CIE(8, 16, 2, layer_norm_input=True), CIE(8, 16, 2)
    raw.load_state_dict(normed.state_dict())
    assert torch.allclose(normed(x), normed(100 * x), atol=1e-5)  # SASRec's user/item scale gap vanishes
    assert not torch.allclose(raw(x), raw(100 * x), atol=1e-2)
    plain = _run(registry, dataset_dir, tmp_path)
    normed_run = _run(registry, dataset_dir, tmp_path, options={"cie_input": "layernorm"})
    plain_stages, normed_stages = (r.record["timings"]["stages"] for r in (plain, normed_run))
    assert normed_stages["llm-step1"]["key"] == plain_stages["llm-step1"]["key"]  # step 1 shared
    assert normed_stages["llm-step2"]["key"] != plain_stages["llm-step2"]["key"]
    assert normed_run.record["config"]["options"]["cie_input"] == "layernorm"
    with pytest.raises(UserError, match="option .cie_input. got .batchnorm.; allowed: one of raw, layernorm"):
        _run(registry, dataset_dir, tmp_path, options={"cie_input": "batchnorm"})


def test_sampled_cpu_preset_is_stated(registry, dataset_dir, tmp_path):
    result = _run(registry, dataset_dir, tmp_path, method="tallrec", eval_sample=6)
    assert result.record["evaluation"]["sampled"] and result.record["evaluation"]["total_rows"] == 24


@pytest.mark.parametrize(("method", "strategy", "expected"), [
    ("tallrec", None, [{"scorer.head.": 0.03}]),
    ("prompt4nr", None, [{"scorer.head.": 0.03}]),
    # step 1 reads head_lr; step 2 does not (the head is frozen with the LLM there)
    ("collm", None, [{"scorer.head.": 0.03}, None]),
    # T3's one step creates the head, so it trains it at head_lr as step 1 would
    ("collm", "t3", [{"scorer.head.": 0.03}]),
])
def test_a_stage_that_reads_head_lr_gives_the_answer_head_its_rate(registry, dataset_dir, tmp_path, monkeypatch,
                                                                   method, strategy, expected):
    """Every stage whose key holds ``head_lr`` hands it to the optimizer, and no other stage
    does: a recorded option that changes nothing would misreport the run."""
    import collm_bench.llm.tuning as tuning

    real, seen = tuning.adamw, []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("lr_by_prefix"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "adamw", spy)
    options = {"head_lr": "0.03", **({"strategy": strategy} if strategy else {})}
    _run(registry, dataset_dir, tmp_path, method=method, options=options)
    assert seen == expected
