"""LLaRA's own tests, as its author would write them: the contract through collm-bench's
conformance kit, then what is LLaRA's own (hybrid prompts, the curriculum, the embeddings)."""
import numpy as np
import pytest

from collm_bench.testing import check_method, load_registry

import collm_bench_llara

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1"}
FAST_SASREC = {"max_epochs": "2", "dim": "8", "history_len": "4"}


@pytest.fixture(scope="module")
def registry():
    return load_registry([("llara", collm_bench_llara)], entry_points=True)


def test_runs_as_a_leaderboard_row_on_llama_and_qwen2_architectures(registry):
    for backbone in ("tiny-llama", "tiny-qwen2"):
        record = check_method(registry, "llara", options=FAST, encoder_options=FAST_SASREC, backbone=backbone)
        assert record["method"] == "llara" and record["encoder"] == "sasrec"
        stages = record["timings"]["stages"]
        assert {"encoder-sasrec", "llara-tune", "scoring"} <= set(stages)


@pytest.fixture
def maker(registry, collm_tiny_dataset):
    from collm_bench.data.interactions import build_interactions
    from collm_bench.llm.backbone import BackboneOptions

    from collm_bench_llara_run import HybridPromptMaker

    data = build_interactions(collm_tiny_dataset)
    backbone = registry.get("backbone", "tiny-llama").load(BackboneOptions())
    return HybridPromptMaker(data, collm_tiny_dataset.items, "movie", backbone, history_titles=3)


def test_each_history_title_and_the_target_are_followed_by_their_slot(maker):
    data = maker.data
    rows = data.rows("test")[:40]
    prompts = maker.prompts(rows, with_ids=True)
    slots = maker.slot_items(rows)
    ph = maker.backbone.placeholder_token
    for r, text in enumerate(prompts.texts):
        items = slots[r][slots[r] > 0]
        spans = prompts.spans[r][prompts.spans[r] >= 0]
        assert len(spans) == len(items) and text.count(ph) == len(items)
        for span, item in zip(spans, items):  # the slot follows its item's quoted title
            assert text[span:span + len(ph)] == ph
            assert text[:span].endswith(f'"{maker.titles[item]}" ')
    assert (slots[:, 0] > 0).all()  # every row has at least its target
    tokenized = maker.tokenized(rows, with_ids=True)
    assert ((tokenized.positions >= 0).sum(1) == (slots > 0).sum(1)).all()


def test_the_curriculum_moves_from_text_to_hybrid_and_replays_the_same():
    from collm_bench_llara_run import hybrid_schedule

    schedule = hybrid_schedule("linear", 1000, seed=3)
    early = np.mean([schedule(t) for t in range(1, 201)])
    late = np.mean([schedule(t) for t in range(801, 1001)])
    assert early < 0.2 < 0.8 < late
    assert [schedule(t) for t in range(1, 50)] == [schedule(t) for t in range(1, 50)]
    assert hybrid_schedule("none", 1000, seed=3) is None


def test_embeddings_fill_each_slot_with_its_own_item(maker):
    import torch

    from collm_bench_llara_run import Projector, item_embedder

    class ItemTable(torch.nn.Module):  # an encoder whose item side is a lookup table
        rep_dim = 4

        def __init__(self, n_items):
            super().__init__()
            self.table = torch.nn.Embedding(n_items, 4)

        def representations(self, batch):
            return self.table(batch["item"]), self.table(batch["item"])

    data = maker.data
    encoder, projector = ItemTable(data.n_items), Projector(4, 16)
    embed = item_embedder(encoder, projector, maker, data, history_len=0)
    rows = data.rows("test")[:10]
    out = embed({"data_rows": rows})
    slots = maker.slot_items(rows)
    assert out.shape == (10, 4, 16)
    expected = projector(encoder.table(torch.from_numpy(slots)))
    assert torch.allclose(out, expected)


def test_tuning_gives_the_answer_head_its_learning_rate(registry, monkeypatch):
    """``head_lr`` is in the tuning stage's key (step 1's options), so it must reach the optimizer."""
    import collm_bench.llm.tuning as tuning

    real, seen = tuning.adamw, []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("lr_by_prefix"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "adamw", spy)
    check_method(registry, "llara", options={**FAST, "head_lr": "0.03"}, encoder_options=FAST_SASREC,
                 backbone="tiny-llama")
    # the kit runs more than once; SASRec's own training (the frozen encoder) reads no head_lr
    assert {"scorer.head.": 0.03} in seen and set(map(repr, seen)) <= {repr({"scorer.head.": 0.03}), "None"}
