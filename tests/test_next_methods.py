"""BinLLM and ReLLa (``binllm``, ``rella``) and the toolkit's ``TextPromptMaker`` they are written
on: hand-checked codes, hash schedule and retrieval on tiny data, then each method end to end
with a random tiny Llama (numbers meaningless)."""
import types

import numpy as np
import pytest
import torch

from collm_bench.api.registry import load_registry
from collm_bench.data.interactions import build_interactions
from collm_bench.errors import UserError
from collm_bench.llm.prompts import ID_TEMPLATE
from collm_bench.llmrec import PromptMaker, TextPromptMaker
from collm_bench.records.predictions import metrics_from_predictions
from collm_bench.records.store import metrics_match
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset, tiny_frames
from collm_bench.data.format import load_prepared, write_prepared

from collm_bench_plugins.methods.binllm_run import CodePromptMaker, HashMF, code_strings, sign_ste
from collm_bench_plugins.methods.rella_run import RetrievalPromptMaker, doubled, item_vectors

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1"}
BINLLM = {**FAST, "step2_max_steps": "4", "hash_max_epochs": "12", "hash_patience": "5", "hash_beta_step": "0.25"}
BACKBONE = types.SimpleNamespace(placeholder_token="<unk>")   # prompts() never tokenizes


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    tiny_dataset(path)
    return load_prepared(path)


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """The tiny data with a ``rating`` column (4-5 liked, 1-3 not)."""
    frame, items = tiny_frames()
    frame["rating"] = np.where(frame["label"] == 1, 4 + frame.index % 2, 1 + frame.index % 3)
    path = tmp_path_factory.mktemp("rated") / "tiny"
    write_prepared(path, frame, items, name="tiny", protocol="tiny with ratings", item_noun="movie")
    return load_prepared(path)


def _maker(cls, dataset, history=3):
    return cls(build_interactions(dataset), dataset.items, dataset.item_noun, BACKBONE, history)


# --- TextPromptMaker -------------------------------------------------------------------------

def test_text_prompt_maker_with_its_defaults_writes_the_paper_text_prompts(dataset):
    maker, paper = _maker(TextPromptMaker, dataset), _maker(PromptMaker, dataset)
    rows = np.arange(len(maker.data.item))
    assert maker.prompts(rows, with_ids=True).texts == paper.prompts(rows, with_ids=False).texts
    assert maker.prompts(rows, True).spans.shape == (len(rows), 0) and not maker.prompts(rows, True).with_ids
    assert maker.describe().startswith("text prompts, no ID slot: ")


def test_a_template_field_that_fields_does_not_give_is_refused(dataset):
    class Coded(TextPromptMaker):
        template = ID_TEMPLATE

    with pytest.raises(ValueError, match=r"names \['item_id', 'user_id'\]"):
        _maker(Coded, dataset).prompts(np.arange(3), False)

    class Short(Coded):
        def fields(self, rows):
            return {"user_id": ["a"], "item_id": ["b"] * len(rows)}

    with pytest.raises(ValueError, match="1 values for 3 rows"):
        _maker(Short, dataset).prompts(np.arange(3), False)

    class Taken(TextPromptMaker):
        def fields(self, rows):
            return {"target": ["x"] * len(rows)}

    with pytest.raises(ValueError, match=r"Taken.fields\(\) gives \['target'\], which the maker fills itself"):
        _maker(Taken, dataset).prompts(np.arange(3), False)


# --- BinLLM ------------------------------------------------------------------------------------

def test_codes_as_text_bits_and_ipv4_by_hand():
    bits = np.array([[1, 0, 1, 1, 0, 1, 1, 1] + [0] * 7 + [1] + [1] * 8 + [1, 1, 1, 1, 0, 0, 0, 0]])
    assert code_strings(bits, "bits") == ["10110111" + "00000001" + "11111111" + "11110000"]
    assert code_strings(bits, "ipv4") == ["183.1.255.240"]
    with pytest.raises(ValueError, match="multiple of 8"):
        code_strings(np.ones((1, 12), dtype=int), "ipv4")


def test_sign_passes_its_gradient_straight_through():
    x = torch.tensor([-0.5, 0.0, 0.25], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1.0, 1.0, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


def test_hash_mf_mixes_in_sign_codes_at_the_authors_rate_and_scores_with_codes_alone():
    torch.manual_seed(0)
    model = HashMF(5, 6, bits=8, beta_step=0.25)
    betas = []
    for _ in range(8):   # fit calls train() once per epoch
        model.train()
        betas.append(model.beta)
    assert betas == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    batch = {"user": torch.tensor([1, 2]), "item": torch.tensor([3, 4])}
    model.eval()
    _, (hu, hi) = model.codes(batch["user"], batch["item"])
    assert set(hu.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(model(batch), (hu * hi).sum(-1))   # evaluation: pure codes
    model.train()
    (zu, zi), _ = model.codes(batch["user"], batch["item"])
    model.epoch = 1   # beta 0: training reads the continuous values only
    assert torch.allclose(model(batch), (zu * zi).sum(-1))


def test_code_prompts_write_the_codes_where_collms_slots_are(dataset):
    maker = _maker(CodePromptMaker, dataset)
    with pytest.raises(RuntimeError, match="set_codes"):
        maker.prompts(np.arange(2), False)
    maker.set_codes([f"u{u}" for u in range(maker.data.n_users)], [f"i{i}" for i in range(maker.data.n_items)])
    rows = np.array([0, 5])
    text = maker.prompts(rows, False).texts[1]
    user, item = maker.data.user[5], maker.data.item[5]
    assert f"encoded in the feature u{user}. Using" in text and f"with the feature i{item}? Answer" in text


def _request(dataset, tmp_path, method, options, backbone="tiny-llama"):
    return RunRequest(method=method, dataset=str(dataset.path), backbone=backbone, out=tmp_path / "runs",
                      cache_dir=str(tmp_path / "cache"), options=options)


def _run(registry, request, progress=lambda m: None):
    return run(request, registry=registry, progress=progress)


def test_binllm_runs_shares_tallrecs_step1_and_tunes_lora_on_code_prompts(registry, dataset, tmp_path):
    from safetensors.torch import load_file

    tallrec = _run(registry, _request(dataset, tmp_path, "tallrec", FAST))
    result = _run(registry, _request(dataset, tmp_path, "binllm", BINLLM))
    stages = result.record["timings"]["stages"]
    assert list(stages) == ["binllm-hash", "llm-step1", "binllm-step2", "scoring"]
    assert stages["llm-step1"]["cached"] and stages["llm-step1"]["key"] == tallrec.record["timings"]["stages"]["llm-step1"]["key"]
    assert metrics_match(result.record["metrics"], metrics_from_predictions(result.run_dir))
    step1 = load_file(next((tmp_path / "cache" / "llm-step1").glob("*/step1.safetensors")))
    step2 = load_file(next((tmp_path / "cache" / "binllm-step2").glob("*/binllm-step2.safetensors")))
    assert step1.keys() == step2.keys()   # LoRA only: no module of its own
    # step 2 tunes what step 1 tuned (LoRA), from step 1's weights
    heard = []
    _run(registry, _request(dataset, tmp_path / "again", "binllm", BINLLM), progress=heard.append)
    tuned = [m for m in heard if m.startswith("tuning ")]
    assert len(tuned) == 2 and tuned[0].split(" (")[0] == tuned[1].split(" (")[0], tuned
    assert "hash codes as text (bits)" in next(m for m in heard if m.startswith("binllm prompts"))
    codes = np.load(next((tmp_path / "cache" / "binllm-hash").glob("*/codes.npz")))
    assert codes["users"].shape[1] == 32 and set(np.unique(codes["users"])) <= {0, 1}
    assert 1 <= result.record["training"]["binllm-hash"]["epochs_run"] <= 12
    # ipv4 text reuses the hash model and step 1, and only those
    ipv4 = _run(registry, _request(dataset, tmp_path, "binllm", {**BINLLM, "code_text": "ipv4"}))
    again = ipv4.record["timings"]["stages"]
    assert again["binllm-hash"]["cached"] and again["llm-step1"]["cached"] and not again["binllm-step2"]["cached"]


def test_the_hash_model_is_shared_by_every_backbone(registry, dataset, tmp_path):
    first = _run(registry, _request(dataset, tmp_path, "binllm", BINLLM))
    other = _run(registry, _request(dataset, tmp_path, "binllm", BINLLM, backbone="tiny-qwen2"))
    a, b = first.record["timings"]["stages"]["binllm-hash"], other.record["timings"]["stages"]["binllm-hash"]
    assert b["cached"] and a["key"] == b["key"]


def test_hash_bits_outside_the_list_are_one_line(registry, dataset, tmp_path):
    with pytest.raises(UserError, match="hash_bits"):
        _run(registry, _request(dataset, tmp_path, "binllm", {**BINLLM, "hash_bits": "12"}))


# --- ReLLa -------------------------------------------------------------------------------------

def _retrieval(dataset, k=3, prompt="rella", vectors=None, ratings=True):
    maker = _maker(RetrievalPromptMaker, dataset, history=k)
    data, frame = maker.data, dataset.interactions
    if vectors is None:   # items 1..n on a circle: similarity falls with the distance of their indices
        angle = np.arange(data.n_items) * 0.3
        vectors = np.stack([np.cos(angle), np.sin(angle)], 1)
        vectors[0] = 0
    maker.set_retrieval(vectors=vectors, timestamps=frame["timestamp"].to_numpy(),
                        ratings=frame["rating"].to_numpy() if ratings and "rating" in frame else None, k=k,
                        prompt=prompt)
    return maker


def test_retrieval_picks_the_k_earlier_items_most_like_the_target_in_time_order(dataset):
    maker = _retrieval(dataset, k=3)
    data = maker.data
    frame = dataset.interactions
    row = int(data.rows("test")[-1])
    earlier = np.flatnonzero((data.user == data.user[row]) & (frame["timestamp"].to_numpy() < frame["timestamp"][row]))
    distance = np.abs(data.item[earlier] - data.item[row])   # the circle's order, for these few items
    expected = np.sort(earlier[np.argsort(distance, kind="stable")[:3]])
    assert maker.listed_rows(row, recent=False).tolist() == expected.tolist()
    assert maker.listed_rows(row, recent=True).tolist() == earlier[-3:].tolist()


def test_retrieval_with_tallrecs_prompt_in_its_recent_form_is_tallrecs_prompt(dataset):
    maker, paper = _retrieval(dataset, k=3, prompt="tallrec"), _maker(PromptMaker, dataset)
    rows = np.arange(len(maker.data.item))
    n = len(rows)
    assert maker.prompts(rows + n, False).texts == paper.prompts(rows, False).texts   # the recent form
    retrieved = maker.prompts(rows, False).texts
    assert all(text.startswith("#Question: A user has given high ratings") for text in retrieved)
    assert retrieved != paper.prompts(rows, False).texts
    for r in rows.tolist():   # liked items only, as TALLRec's list
        assert (maker.data.label[maker.listed_rows(r, recent=False)] == 1).all()


def test_rellas_prompt_lists_ratings_numbered_from_zero(rated):
    maker = _retrieval(rated, k=2)
    data = maker.data
    row = int(data.rows("test")[0])
    listed = maker.listed_rows(row, recent=False)
    text = maker.prompts(np.array([row]), False).texts[0]
    ratings = rated.interactions["rating"].to_numpy()
    stars = ["1 star" if ratings[h] == 1 else f"{ratings[h]} stars" for h in listed]
    entries = [f"{j}. {maker.titles[data.item[h]]} ({s})" for j, (h, s) in enumerate(zip(listed, stars))]
    assert f"rated them: {entries!r}." in text
    assert f"***{maker.titles[data.item[row]]}***" in text and "more stars" in text
    unrated = _retrieval(rated, k=2, ratings=False)
    text = unrated.prompts(np.array([row]), False).texts[0]
    assert "liked)" in text and "stars" not in text


def test_doubled_data_repeats_train_rows_only(dataset):
    data = build_interactions(dataset)
    twice = doubled(data)
    n = len(data.item)
    assert twice.rows("train").tolist() == data.rows("train").tolist() + (data.rows("train") + n).tolist()
    assert twice.rows("valid").tolist() == data.rows("valid").tolist()
    assert np.flatnonzero(twice.valid_small).tolist() == np.flatnonzero(data.valid_small).tolist()
    assert (twice.label[n:] == data.label).all()


def test_item_vectors_are_unit_rows_after_pca_and_the_same_twice(registry, dataset):
    from collm_bench.llm.backbone import BackboneOptions

    backbone = registry.get("backbone", "tiny-llama").load(BackboneOptions())
    titles = np.array([""] + [f"Movie {i}" for i in range(1, 11)], dtype=object)
    a = item_vectors(backbone, titles, "movie", dims=512)
    assert a.shape == (11, min(backbone.hidden_size, 9)) and not a[0].any()
    assert np.allclose(np.linalg.norm(a[1:], axis=1), 1, atol=1e-5)
    assert np.array_equal(a, item_vectors(backbone, titles, "movie", dims=512))
    assert item_vectors(backbone, titles, "movie", dims=4).shape == (11, 4)


def test_rella_tuned_and_zero_shot_run_and_share_the_item_embeddings(registry, rated, tmp_path):
    tuned = _run(registry, _request(rated, tmp_path, "rella", FAST))
    stages = tuned.record["timings"]["stages"]
    assert list(stages) == ["rella-items", "rella-tune", "scoring"]
    assert metrics_match(tuned.record["metrics"], metrics_from_predictions(tuned.run_dir))
    zero = _run(registry, _request(rated, tmp_path, "rella", {"history_titles": "3", "tuning": "zero-shot"}))
    zstages = zero.record["timings"]["stages"]
    assert list(zstages) == ["rella-items", "scoring"] and zstages["rella-items"]["cached"]
    assert zero.record["timings"]["train_seconds"] == 0
    only = _run(registry, _request(rated, tmp_path, "rella", {**FAST, "prompt": "tallrec"}))
    assert only.record["timings"]["stages"]["rella-tune"]["key"] != stages["rella-tune"]["key"]


def test_rella_zero_shot_refuses_an_encoder_backbone_before_loading_it(registry, dataset, tmp_path, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("weights loaded before refusing")

    monkeypatch.setattr("collm_bench.llm.backbone.load_hf_backbone", no_loading)
    with pytest.raises(UserError, match="tuning=zero-shot .* causal backbone") as info:
        _run(registry, _request(dataset, tmp_path, "rella", {"tuning": "zero-shot"}, backbone="minilm"))
    assert "\n" not in str(info.value) and "minilm" in str(info.value)


@pytest.mark.parametrize("method, options", [("binllm", BINLLM), ("rella", FAST),
                                             ("rella", {"history_titles": "3", "tuning": "zero-shot"})])
def test_the_new_methods_pass_the_conformance_kit(registry, method, options):
    """Run id known before the run, scores and record consistent, the same scores twice."""
    from collm_bench.testing import check_method

    check_method(registry, method, backbone="tiny-llama", options=options)
