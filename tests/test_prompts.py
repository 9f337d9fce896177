"""Prompts: exact text and token ids of a fixed row, placeholders, padding, length buckets."""
import numpy as np
import pandas as pd
import pytest

from collm_bench.errors import UserError
from collm_bench.llm.prompts import (
    build_prompts, bucket_batches, collate, padding_fraction, title_list, titles_by_index, tokenize_for,
    tokenize_prompts,
)



@pytest.fixture(scope="module")
def minilm():
    from collm_bench_plugins.backbones.minilm import load

    return load()


@pytest.fixture(scope="module")
def tiny_llama():
    from collm_bench_plugins.backbones.tiny_llama import load

    return load()


TITLES = ["", "Toy Story (1995)", "Heat (1995)", "Jumanji (1995)"]
HISTORY = np.array([[0, 1, 2]])
TARGET = np.array([3])

ID_TEXT = (
    '#Question: A user has given high ratings to the following movies: "Toy Story (1995)", "Heat (1995)". '
    "Additionally, we have information about the user's preferences encoded in the feature <unk>. "
    "Using all available information, make a prediction about whether the user would enjoy the movie titled "
    '"Jumanji (1995)" with the feature <unk>? Answer with "Yes" or "No". \\n#Answer:'
)
TEXT_ONLY = (
    '#Question: A user has given high ratings to the following movies: "Toy Story (1995)", "Heat (1995)". '
    'Leverage the information to predict whether the user would enjoy the movie titled "Jumanji (1995)"? '
    'Answer with "Yes" or "No". \\n#Answer:'
)

# [CLS] ... [SEP] with the real (uncased WordPiece) MiniLM tokenizer; 100 = [UNK] placeholders.
MINILM_IDS = [
    101, 1001, 3160, 1024, 1037, 5310, 2038, 2445, 2152, 8599, 2000, 1996, 2206, 5691, 1024, 1000, 9121,
    2466, 1006, 2786, 1007, 1000, 1010, 1000, 3684, 1006, 2786, 1007, 1000, 1012, 5678, 1010, 2057, 2031,
    2592, 2055, 1996, 5310, 1005, 1055, 18394, 12359, 1999, 1996, 3444, 100, 1012, 2478, 2035, 2800, 2592,
    1010, 2191, 1037, 17547, 2055, 3251, 1996, 5310, 2052, 5959, 1996, 3185, 4159, 1000, 18414, 2386, 4478,
    1006, 2786, 1007, 1000, 2007, 1996, 3444, 100, 1029, 3437, 2007, 1000, 2748, 1000, 2030, 1000, 2053,
    1000, 1012, 1032, 1050, 1001, 3437, 1024, 102,
]
# <s> ... with tiny-llama's byte-level BPE; 0 = <unk> placeholders.
TINY_LLAMA_IDS = [
    1, 5, 344, 28, 281, 286, 369, 381, 361, 382, 304, 264, 380, 444, 28, 265, 329, 342, 262, 279, 362, 265,
    325, 262, 279, 363, 409, 14, 425, 430, 313, 378, 264, 286, 412, 439, 438, 292, 264, 379, 223, 0, 16, 407,
    426, 440, 313, 14, 436, 277, 433, 378, 375, 264, 286, 377, 368, 264, 443, 374, 265, 343, 262, 279, 280,
    305, 264, 379, 223, 0, 33, 340, 305, 265, 330, 4, 358, 265, 327, 346, 345, 80, 5, 347, 28,
]


def test_exact_prompt_text():
    with_ids = build_prompts(TITLES, HISTORY, TARGET, item_noun="movie", with_ids=True, placeholder="<unk>")
    assert with_ids.texts == [ID_TEXT]
    assert with_ids.spans.tolist() == [[ID_TEXT.index("<unk>"), ID_TEXT.rindex("<unk>")]]
    text = build_prompts(TITLES, HISTORY, TARGET, item_noun="movie")
    assert text.texts == [TEXT_ONLY] and text.spans.tolist() == [[-1, -1]]


def test_item_noun_empty_history_and_cap():
    p = build_prompts(TITLES, np.array([[0, 0, 0], [1, 2, 3]]), np.array([1, 2]), item_noun="book",
                      history_len=2)
    assert p.texts[0].startswith("#Question: A user has given high ratings to the following books: unkow. ")
    assert 'enjoy the book titled "Toy Story (1995)"?' in p.texts[0]
    # only the last two (most recent) titles, oldest first
    assert 'following books: "Heat (1995)", "Jumanji (1995)". ' in p.texts[1]
    assert title_list([]) == "unkow" and title_list(["a", "b"]) == '"a", "b"'
    none = build_prompts(TITLES, np.array([[1, 2, 3]]), np.array([1]), history_len=0)
    assert "following items: unkow." in none.texts[0]


def test_titles_by_index():
    items = pd.DataFrame({"item": [30, 10, 20], "title": ["c", "a", "b"]})
    assert titles_by_index(items, np.array([0, 10, 20, 30])).tolist() == ["", "a", "b", "c"]


def test_minilm_token_ids(minilm):
    p = build_prompts(TITLES, HISTORY, TARGET, item_noun="movie", with_ids=True, placeholder=minilm.placeholder_token)
    tok = tokenize_for(minilm, p)
    assert tok.ids[0].tolist() == MINILM_IDS
    assert tok.positions.tolist() == [[45, 75]]
    assert all(MINILM_IDS[i] == minilm.placeholder_token_id == 100 for i in (45, 75))


def test_tiny_llama_token_ids(tiny_llama):
    p = build_prompts(TITLES, HISTORY, TARGET, item_noun="movie", with_ids=True,
                      placeholder=tiny_llama.placeholder_token)
    assert p.texts == [ID_TEXT]
    tok = tokenize_for(tiny_llama, p)
    assert tok.ids[0].tolist() == TINY_LLAMA_IDS
    assert tok.ids[0][0] == tiny_llama.tokenizer.bos_token_id  # BOS prepended, nothing appended
    assert tok.positions.tolist() == [[41, 69]]


def test_placeholder_found_by_offsets_not_by_id(minilm):
    # A title with characters the vocabulary lacks also becomes [UNK]: it must not move the placeholders.
    titles = ["", "\u2603\u2603 (1995)", "Heat (1995)"]
    p = build_prompts(titles, np.array([[1]]), np.array([2]), with_ids=True, placeholder=minilm.placeholder_token)
    tok = tokenize_for(minilm, p)
    ids = tok.ids[0]
    assert (ids == 100).sum() == 3
    first_unk = int(np.flatnonzero(ids == 100)[0])
    assert first_unk not in tok.positions[0]
    assert all(ids[pos] == 100 for pos in tok.positions[0])


def test_placeholder_must_be_one_token(tiny_llama):
    p = build_prompts(TITLES, HISTORY, TARGET, with_ids=True, placeholder="<userid>")
    with pytest.raises(UserError, match="one token"):
        tokenize_prompts(p, tiny_llama.tokenizer, kind="causal", placeholder_token_id=0)


@pytest.mark.parametrize("name", ["minilm", "tiny_llama"])
def test_a_prompt_longer_than_the_context_is_refused_on_every_backbone_kind(name, request):
    backbone = request.getfixturevalue(name)
    limit = backbone.model.config.max_position_embeddings          # 512 (encoder), 2048 (causal)
    titles = ["", "Toy Story (1995)", "word " * (limit + 10)]
    p = build_prompts(titles, np.array([[1], [1]]), np.array([1, 2]))
    with pytest.raises(UserError) as err:
        tokenize_for(backbone, p)
    message = str(err.value)
    assert message.startswith("prompt 1 of 2 (") and f"over backbone {backbone.name}'s context of {limit:,}" in message
    assert "tokens long" in message and "never truncated" in message


def test_many_bytes_but_few_tokens_is_no_refusal(minilm):
    titles = ["", "Toy Story (1995)", "x" * 700]                  # > 512 bytes, a handful of word pieces
    p = build_prompts(titles, np.array([[1]]), np.array([2]))
    assert tokenize_for(minilm, p).lengths.max() < 512


def test_collate_left_and_right_padding(tiny_llama):
    p = build_prompts(TITLES, np.array([[0, 0, 1], [1, 2, 3]]), np.array([3, 1]), with_ids=True,
                      placeholder=tiny_llama.placeholder_token)
    tok = tokenize_for(tiny_llama, p)
    short, long = tok.lengths
    assert short < long
    left = collate(tok, np.array([0, 1]), pad_id=7, padding_side="left")
    shift = long - short
    assert left["input_ids"][0, :shift].tolist() == [7] * shift
    assert left["attention_mask"].sum(1).tolist() == [short, long]
    assert (left["placeholder_positions"][0] == tok.positions[0] + shift).all()
    assert left["input_ids"][0, left["placeholder_positions"][0]].tolist() == [0, 0]
    right = collate(tok, np.array([0, 1]), pad_id=7, padding_side="right")
    assert right["input_ids"][0, short:].tolist() == [7] * shift
    assert (right["placeholder_positions"] == tok.positions).all()
    text = build_prompts(TITLES, np.array([[0, 0, 1]]), np.array([3]))
    assert collate(tokenize_for(tiny_llama, text), np.array([0]), pad_id=7)["placeholder_positions"].tolist() == [[-1, -1]]


def test_bucket_batches():
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 200, size=1000)
    for seed in (None, 3):
        batches = bucket_batches(lengths, 16, seed=seed)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(1000))
        assert all(len(b) <= 16 for b in batches)
    assert [b.tolist() for b in bucket_batches(lengths, 16, seed=3)] == \
        [b.tolist() for b in bucket_batches(lengths, 16, seed=3)]
    assert [b.tolist() for b in bucket_batches(lengths, 16, seed=3)] != \
        [b.tolist() for b in bucket_batches(lengths, 16, seed=4)]
    plain = [np.arange(i, min(i + 16, 1000)) for i in range(0, 1000, 16)]
    assert padding_fraction(lengths, bucket_batches(lengths, 16)) < 0.01
    assert padding_fraction(lengths, bucket_batches(lengths, 16, seed=3)) < 0.05 < padding_fraction(lengths, plain)


def test_row_prompts_follow_the_history_rule(collm_tiny_dataset):
    from collm_bench.data.interactions import build_interactions
    from collm_bench.llm.prompts import row_prompts

    data = build_interactions(collm_tiny_dataset)
    titles = titles_by_index(collm_tiny_dataset.items, data.item_ids)
    rows = data.rows("test")[:20]
    prompts = row_prompts(titles, data, rows, item_noun=collm_tiny_dataset.item_noun, history_len=3)
    for r, text in zip(rows.tolist(), prompts.texts):
        recent = data.histories.row(r)[-3:]
        expected = ", ".join(f'"{titles[i]}"' for i in recent) if len(recent) else "unkow"
        assert text.startswith(f"#Question: A user has given high ratings to the following movies: {expected}. ")
        assert f'enjoy the movie titled "{titles[data.item[r]]}"?' in text
