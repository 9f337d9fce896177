"""The baselines (icl, prompt4nr, ctrl, ui-token) end to end on tiny data with a random tiny
Llama (numbers meaningless): each runs, its record agrees with its predictions, and each one's
defining property holds."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from collm_bench.errors import UserError
from collm_bench.api.registry import load_registry
from collm_bench.records.store import metrics_match
from collm_bench.records.predictions import metrics_from_predictions
from collm_bench.runner import RunRequest, plan, run
from collm_bench.llm.prompts import tokenize_for
from collm_bench.testing import tiny_dataset

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1"}
FAST_STEP2 = {"step2_max_steps": "4"}
FAST_DIN = {"max_epochs": "2", "dim": "6", "history_len": "5"}
FAST_CTRL = {"history_titles": "3", "align_epochs": "8", "align_batch_size": "32", "proj_dim": "8"}
OPTIONS = {"icl": {"history_titles": "3"}, "prompt4nr": {**FAST, "soft_tokens": "3"},
           "ui-token": {**FAST, **FAST_STEP2}, "collm": {**FAST, **FAST_STEP2}, "ctrl": FAST_CTRL}
ENCODER_OPTIONS = {"collm": {"max_epochs": "2", "dim": "8"}, "ctrl": FAST_DIN}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    tiny_dataset(path)
    return str(path)


def _request(dataset_dir, tmp_path, method, backbone="tiny-llama", **kw):
    return RunRequest(method=method, dataset=dataset_dir, backbone=backbone, out=tmp_path / "runs",
                      cache_dir=str(tmp_path / "cache"), options=OPTIONS[method],
                      encoder_options=ENCODER_OPTIONS.get(method, {}), **kw)


def _run(registry, dataset_dir, tmp_path, method, **kw):
    return run(_request(dataset_dir, tmp_path, method, **kw), registry=registry, progress=lambda m: None)


@pytest.mark.parametrize("method", ["icl", "prompt4nr", "ui-token", "ctrl"])
def test_each_baseline_runs_and_its_record_matches_its_predictions(registry, dataset_dir, tmp_path, method):
    planned = plan(_request(dataset_dir, tmp_path, method), registry=registry)
    result = _run(registry, dataset_dir, tmp_path, method)
    record = result.record
    assert record["run_id"] == planned.run_id  # presets resolved alike: a suite can skip it
    assert record["method"] == method and record["backbone"] == "tiny-llama" and record["meaningless"]
    assert metrics_match(record["metrics"], metrics_from_predictions(result.run_dir))
    assert np.isfinite(record["metrics"]["overall"]["auc"])
    assert record["timings"]["inference_seconds"] > 0
    assert all("seconds" in s or "key" in s for s in record["timings"]["stages"].values())
    rerun = _run(registry, dataset_dir, tmp_path, method)
    assert all(s.get("cached", True) for s in rerun.record["timings"]["stages"].values())
    assert rerun.record["metrics"] == record["metrics"]


def test_icl_trains_nothing_and_reads_yes_against_no(registry, dataset_dir, tmp_path):
    result = _run(registry, dataset_dir, tmp_path, "icl")
    stages = result.record["timings"]["stages"]
    assert set(stages) == {"backbone-load", "scoring"}
    assert result.record["timings"]["train_seconds"] == 0
    assert result.record["config"]["options"]["readout"] == "yes-no"
    assert result.record["config"]["options"]["preset"] == "cpu"


def test_icl_refuses_an_encoder_backbone_before_loading_it(registry, dataset_dir, tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("weights loaded before refusing")

    monkeypatch.setattr("collm_bench.llm.backbone.load_hf_backbone", no_loading)
    with pytest.raises(UserError) as info:
        _run(registry, dataset_dir, tmp_path, "icl", backbone="minilm")
    message = str(info.value)
    assert "\n" not in message and "minilm" in message and "causal" in message and "--backbone" in message


def test_prompt4nr_tunes_the_soft_prompt_and_lora_with_the_base_frozen(registry, dataset_dir, tmp_path, monkeypatch):
    import collm_bench_plugins.methods.llm_baselines as baselines

    real, seen = baselines.train_prompts, {}

    def watched(scorer, *args, modules, embed, **kwargs):
        base = {n: p.detach().clone() for n, p in scorer.model.named_parameters() if "lora_" not in n}
        soft = modules["soft"].tokens
        values = []  # the soft prompt as each loss and evaluation sees it (the end state may be the first)

        def watching(batch):
            values.append(float(soft.detach().double().sum()))
            return embed(batch)

        result = real(scorer, *args, modules=modules, embed=watching, **kwargs)
        seen["base_same"] = all(torch.equal(base[n], p) for n, p in scorer.model.named_parameters() if n in base)
        seen["base_frozen"] = not any(p.requires_grad for n, p in scorer.model.named_parameters() if n in base)
        seen["soft_moved"] = len(set(values)) > 1
        return result

    monkeypatch.setattr(baselines, "train_prompts", watched)
    result = _run(registry, dataset_dir, tmp_path, "prompt4nr")
    assert seen == {"base_same": True, "base_frozen": True, "soft_moved": True}
    saved = load_file(next((tmp_path / "cache" / "prompt4nr-tune").glob("*/prompt4nr.safetensors")))
    assert saved["soft.tokens"].shape == (3, 64)
    assert {k.split(".")[0] for k in saved} == {"model", "soft"} and all("lora_" in k for k in saved if k[0] == "m")
    assert "prompt4nr-tune" in result.record["timings"]["stages"]


def test_ctrl_alignment_lowers_its_contrastive_loss(registry, dataset_dir, tmp_path):
    result = _run(registry, dataset_dir, tmp_path, "ctrl")
    assert result.record["encoder"] == "din"
    curve = result.record["training"]["alignment"]["align_loss_curve"]
    assert len(curve) == 8 and curve[-1] < curve[0]
    assert {"ctrl-text", "ctrl-align", "ctrl-finetune", "inference"} == set(result.record["timings"]["stages"])
    assert result.record["training"]["pooling"].startswith("final hidden state")


def test_ui_token_reuses_collms_step1_and_trains_only_its_tables(registry, dataset_dir, tmp_path):
    collm = run(RunRequest(method="collm", dataset=dataset_dir, backbone="tiny-llama", out=tmp_path / "runs",
                           cache_dir=str(tmp_path / "cache"), options=OPTIONS["collm"],
                           encoder_options=ENCODER_OPTIONS["collm"]), registry=registry, progress=lambda m: None)
    assert not collm.record["timings"]["stages"]["llm-step1"]["cached"]
    result = _run(registry, dataset_dir, tmp_path, "ui-token")
    stages = result.record["timings"]["stages"]
    assert stages["llm-step1"]["cached"] and stages["llm-step1"]["key"] == collm.record["timings"]["stages"]["llm-step1"]["key"]
    assert not stages["ui-token-step2"]["cached"]
    step1 = load_file(next((tmp_path / "cache" / "llm-step1").glob("*/step1.safetensors")))
    step2 = load_file(next((tmp_path / "cache" / "ui-token-step2").glob("*/ui-token.safetensors")))
    assert all(torch.equal(step1[k], step2[k]) for k in step1)  # LoRA frozen in step 2
    assert step2["ui.users.weight"].shape[1] == 64 and step2["ui.items.weight"].shape[1] == 64


@pytest.mark.parametrize("method", ["prompt4nr", "ui-token", "ctrl"])
def test_baselines_run_on_an_encoder_backbone(registry, dataset_dir, tmp_path, method):
    """minilm (no LM head): the answer head reads [CLS]; CTRL mean-pools its prompt states."""
    result = _run(registry, dataset_dir, tmp_path, method, backbone="minilm")
    assert result.record["backbone"] == "minilm" and not result.record["meaningless"]
    assert np.isfinite(result.record["metrics"]["overall"]["auc"])
    if method == "ctrl":
        assert result.record["training"]["pooling"].startswith("mean")


@pytest.mark.parametrize("backbone", ["tiny-llama", "minilm"])
def test_soft_prompt_tokens_sit_right_after_the_opening_token(registry, dataset_dir, backbone):
    from collm_bench.data.format import load_prepared
    from collm_bench.data.interactions import build_interactions
    from collm_bench_plugins.methods.llm_baselines import SoftPromptMaker

    dataset = load_prepared(dataset_dir)
    data = build_interactions(dataset)
    loaded = registry.get("backbone", backbone).load(None)
    maker = SoftPromptMaker(data, dataset.items, dataset.item_noun, loaded, 3, n_soft=4)
    rows = data.rows("train")[:5]
    batch = maker.batch(rows, with_ids=True)
    plain = tokenize_for(loaded, maker.prompts(rows, False))
    for b, positions in enumerate(batch["placeholder_positions"]):
        ids = batch["input_ids"][b][batch["attention_mask"][b] == 1]
        start = positions[0] - (len(batch["input_ids"][b]) - len(ids) if loaded.padding_side == "left" else 0)
        assert start == 1 and list(np.diff(positions)) == [1, 1, 1]
        assert all(ids[1:5] == loaded.placeholder_token_id)
        assert list(ids[[0, *range(5, len(ids))]]) == list(plain.ids[b])
