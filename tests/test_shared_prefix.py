"""Shared-prefix causal scoring: groups computed by hand, and scores equal to plain scoring on
tiny random Llama and Qwen2 models (text prompts, ID prompts, soft prompts, both readouts)."""
import numpy as np
import pytest
import torch

from collm_bench.llm.scorer import LLMScorer, add_lora, score_batches
from collm_bench.llm.prompts import (TokenizedPrompts, bucket_batches, build_prompts, collate, collate_shared,
                                 pack_groups, prefix_groups, tokenize_for)


def _tok(seqs, positions=None):
    ids = [np.asarray(s, dtype=np.int64) for s in seqs]
    pos = np.asarray(positions if positions is not None else [[-1, -1]] * len(ids), dtype=np.int64)
    return TokenizedPrompts(ids, pos)


def test_groups_by_hand():
    head = list(range(100, 110))                  # 10 shared tokens
    seqs = [head + [1, 2, 3, 7], head + [1, 2, 3, 8, 9], head + [4, 5], head + [1, 2, 3, 6]]
    users = np.array([0, 0, 0, 1])
    groups = prefix_groups(_tok(seqs), users, min_prefix=8)
    # rows 0-1 share 13 tokens; row 2 shares 10 of them: 10 + (4 + 5 + 2) = 21 < (13 + 1 + 2) + 12 = 28,
    # so it joins at 10; user 1 is a group of its own (nothing shared, prefix 0)
    assert [(g.rows.tolist(), g.prefix_len) for g in groups] == [([0, 1, 2], 10), ([3], 0)]
    # a group never takes a row's last token (the answer is read there), nor grows past max_rows
    same = [head + [1], head + [1]]
    (group,) = prefix_groups(_tok(same), np.array([0, 0]))
    assert group.prefix_len == len(head)
    assert len(prefix_groups(_tok(same), np.array([0, 0]), max_rows=1)) == 2


def test_a_placeholder_is_shared_only_where_its_embedding_is_the_same():
    seqs = [[9, 9, 9, 9, 9, 9, 9, 9, 0, 5, 6], [9, 9, 9, 9, 9, 9, 9, 9, 0, 5, 7]]
    positions = [[8, -1], [8, -1]]
    same = prefix_groups(_tok(seqs, positions), np.array([0, 0]), placeholder_keys=np.array([["a", None], ["a", None]]))
    other = prefix_groups(_tok(seqs, positions), np.array([0, 0]), placeholder_keys=np.array([["a", None], ["b", None]]))
    assert [g.prefix_len for g in same] == [10]
    assert [g.prefix_len for g in other] == [8]   # stops before the placeholder that differs


def test_collate_shared_layout():
    tok = _tok([[1, 2, 3, 4, 5], [1, 2, 3, 6], [7, 8]], [[3, -1], [-1, 2], [-1, -1]])
    groups = prefix_groups(tok, np.array([0, 0, 1]), min_prefix=2)
    batch = collate_shared(tok, groups, pad_id=0)
    assert batch["prefix_ids"].tolist() == [[1, 2, 3], [0, 0, 0]]
    assert batch["prefix_mask"].tolist() == [[1, 1, 1], [0, 0, 0]]
    assert batch["input_ids"].tolist() == [[4, 5], [0, 6], [7, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1], [0, 1], [1, 1]]
    assert batch["group"].tolist() == [0, 0, 1] and batch["rows"].tolist() == [0, 1, 2]
    assert batch["placeholder_positions"].tolist() == [[0, -1], [-1, -1], [-1, -1]]  # row 0's token 3: suffix col 0
    assert batch["prefix_positions"].tolist() == [[-1, -1], [-1, 2], [-1, -1]]


def _prompts(backbone, n=40, seed=0, with_ids=False):
    titles = ["", "Toy Story (1995)", "Heat (1995)", "Casino (1995)", "Babe (1995)", "Se7en (1995)", "Fargo (1996)"]
    rng = np.random.default_rng(seed)
    users = np.sort(rng.integers(0, 6, n))
    history = np.zeros((n, 3), dtype=np.int64)
    for i in range(n):  # a user's next row keeps the history until (by chance) a positive
        fresh = i == 0 or users[i] != users[i - 1] or rng.random() < 0.3
        history[i] = rng.integers(1, 7, 3) if fresh else history[i - 1]
    target = rng.integers(1, 7, n)
    prompts = build_prompts(titles, history, target, item_noun="movie", with_ids=with_ids,
                            placeholder=backbone.placeholder_token)
    return tokenize_for(backbone, prompts), users


def _both(scorer, backbone, tok, users, vectors=None, keys=None):
    embed = (lambda t: vectors[t["rows"]]) if vectors is not None else None
    plain = score_batches(scorer, [collate(tok, rows, pad_id=backbone.pad_token_id)
                                   for rows in bucket_batches(tok.lengths, 16)], n=len(tok), embed_fn=embed)
    groups = prefix_groups(tok, users, placeholder_keys=keys, max_rows=16)
    shared = score_batches(scorer, [collate_shared(tok, g, pad_id=backbone.pad_token_id) for g in pack_groups(groups, 16)],
                           n=len(tok), embed_fn=embed)
    assert sum(g.prefix_len * (len(g.rows) - 1) for g in groups) > 0.2 * tok.lengths.sum()  # it does share
    return plain, shared


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-qwen2"])
def scorer(request):
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.api.registry import load_registry

    torch.manual_seed(0)
    backbone = load_registry().get("backbone", request.param).load(BackboneOptions())
    scorer = add_lora(LLMScorer(backbone))
    for param in scorer.parameters():  # LoRA B starts at zero: make the adapters act
        if param.requires_grad:
            torch.nn.init.normal_(param, std=0.05)
    return scorer, backbone


def test_text_prompts_score_as_without_sharing(scorer):
    scorer, backbone = scorer
    tok, users = _prompts(backbone)
    plain, shared = _both(scorer, backbone, tok, users)
    np.testing.assert_allclose(shared, plain, atol=1e-5)


@pytest.mark.parametrize("user_embedding", ["per user (MF)", "per row (DIN)"])
def test_id_prompts_score_as_without_sharing(scorer, user_embedding):
    scorer, backbone = scorer
    tok, users = _prompts(backbone, with_ids=True)
    generator = torch.Generator().manual_seed(1)
    vectors = torch.randn(len(tok), 2, backbone.hidden_size, generator=generator)
    if user_embedding == "per user (MF)":
        vectors[:, 0] = torch.randn(7, backbone.hidden_size, generator=generator)[users]
    keys = np.array([[v.numpy().tobytes() for v in row] for row in vectors], dtype=object)
    plain, shared = _both(scorer, backbone, tok, users, vectors, keys)
    np.testing.assert_allclose(shared, plain, atol=1e-5)


def test_soft_prompts_and_the_yes_no_readout_score_as_without_sharing(scorer):
    from collm_bench_plugins.methods.llm_baselines import YesNoScorer

    scorer, backbone = scorer
    yes_no = YesNoScorer(backbone, "yes-no")
    tok, users = _prompts(backbone)
    soft = 3  # Prompt4NR's layout: soft tokens right after the opening token
    ids = [np.concatenate([s[:1], np.full(soft, backbone.placeholder_token_id), s[1:]]) for s in tok.ids]
    tok = TokenizedPrompts(ids, np.tile(np.arange(1, 1 + soft), (len(ids), 1)))
    vectors = torch.randn(1, soft, backbone.hidden_size).expand(len(ids), -1, -1)
    keys = np.array([[str(j) for j in range(soft)]] * len(ids), dtype=object)
    for model in (scorer, yes_no):
        plain, shared = _both(model, backbone, tok, users, vectors, keys)
        np.testing.assert_allclose(shared, plain, atol=1e-5)
