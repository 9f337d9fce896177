"""The LLM scorer on tiny models: Yes-token read-out, placeholders, padding invariance, LoRA
training, frozen weights, save/reload, batched scoring, int8."""
import numpy as np
import pytest
import torch

from collm_bench.errors import UserError
from collm_bench.llm.scorer import (
    LLMScorer, add_lora, bce_loss, load_trainable, lora_parameters, quantize_int8, save_trainable,
    score_batches, set_lora_trainable, to_device, trainable_state,
)
from collm_bench.llm.prompts import build_prompts, bucket_batches, collate, tokenize_for

TITLES = ["", "Toy Story (1995)", "Heat (1995)", "Jumanji (1995)", "Casino (1995)", "Fargo (1996)"]
HISTORY = np.array([[0, 0, 1], [0, 0, 0], [1, 2, 4], [3, 4, 5], [0, 2, 5], [1, 3, 4]])
TARGET = np.array([3, 1, 2, 1, 4, 5])
LABELS = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
BACKBONES = ("tiny-llama", "tiny-qwen2", "minilm")


@pytest.fixture(scope="module")
def backbones():
    from collm_bench.api.registry import load_registry

    registry = load_registry()
    return {name: registry.get("backbone", name).load for name in BACKBONES}


def _setup(load, with_ids=True, seed=0):
    torch.manual_seed(seed)
    backbone = load()
    scorer = LLMScorer(backbone)
    prompts = build_prompts(TITLES, HISTORY, TARGET, item_noun="movie", with_ids=with_ids,
                            placeholder=backbone.placeholder_token)
    tok = tokenize_for(backbone, prompts)
    batch = to_device(collate(tok, np.arange(len(TARGET)), pad_id=backbone.pad_token_id,
                              padding_side=backbone.padding_side), "cpu")
    embeds = torch.randn(len(TARGET), 2, backbone.hidden_size, generator=torch.Generator().manual_seed(1)) * 0.05
    return backbone, scorer, tok, batch, embeds


def _scores(scorer, batch, embeds):
    scorer.eval()
    with torch.no_grad():
        return scorer(batch["input_ids"], batch["attention_mask"], embeds, batch["placeholder_positions"])


def test_causal_score_is_the_yes_logit_at_the_last_position(backbones):
    backbone, scorer, _, batch, _ = _setup(backbones["tiny-llama"], with_ids=False)
    with torch.no_grad():
        full = backbone.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits
        got = scorer(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(got, full[:, -1, backbone.yes_token_id], atol=1e-6)


@pytest.mark.parametrize("name", BACKBONES)
def test_padding_invariance(backbones, name):
    backbone, scorer, tok, batch, embeds = _setup(backbones[name])
    assert len(set(tok.lengths.tolist())) > 1
    padded = _scores(scorer, batch, embeds)
    for r in range(len(TARGET)):
        one = to_device(collate(tok, np.array([r]), pad_id=backbone.pad_token_id,
                                padding_side=backbone.padding_side), "cpu")
        assert one["attention_mask"].all()
        single = _scores(scorer, one, embeds[r:r + 1])
        assert abs(float(single[0]) - float(padded[r])) < 1e-5, (name, r)


@pytest.mark.parametrize("name", BACKBONES)
def test_placeholders_act_only_through_their_embeddings(backbones, name):
    backbone, scorer, tok, batch, embeds = _setup(backbones[name])
    base = _scores(scorer, batch, embeds)
    # other embeddings at the placeholders change every score...
    # (random, not constant shifts: BERT's embedding LayerNorm removes a constant shift)
    noise = torch.randn(embeds.shape, generator=torch.Generator().manual_seed(2)) * 0.5
    changed = _scores(scorer, batch, embeds + noise)
    assert (changed - base).abs().min() > 1e-6
    # ... and the user slot and the item slot each matter on their own
    for slot in (0, 1):
        moved = embeds.clone()
        moved[:, slot] += noise[:, slot]
        assert (_scores(scorer, batch, moved) - base).abs().min() > 1e-6
    # the token ids under the placeholders are never read
    ids = batch["input_ids"].clone()
    rows = torch.arange(len(ids)).unsqueeze(1)
    ids[rows, batch["placeholder_positions"]] = 5
    same = _scores(scorer, {**batch, "input_ids": ids}, embeds)
    assert torch.equal(same, base)
    # placeholder embeddings for prompts without placeholders are an error
    _, _, _, text_batch, _ = _setup(backbones[name], with_ids=False)
    with pytest.raises(ValueError):
        _scores(scorer, text_batch, embeds)


@pytest.mark.parametrize("name", ["tiny-llama", "minilm"])
def test_lora_step_lowers_loss_and_leaves_base_weights_bit_identical(backbones, name):
    backbone, scorer, _, batch, embeds = _setup(backbones[name])
    add_lora(scorer, r=8, alpha=16, dropout=0.05)
    base_before = {n: p.detach().clone() for n, p in scorer.named_parameters() if not p.requires_grad}
    trainable_before = {n: p.detach().clone() for n, p in trainable_state(scorer).items()}
    assert set(n for n, p in scorer.named_parameters() if p.requires_grad) == set(trainable_before)
    assert all("lora_" in n or n.startswith("head.") for n in trainable_before)
    optimizer = torch.optim.AdamW([p for p in scorer.parameters() if p.requires_grad], lr=1e-2)

    def loss():
        return bce_loss(scorer(batch["input_ids"], batch["attention_mask"], embeds, batch["placeholder_positions"]),
                        LABELS)

    scorer.eval()  # no dropout: compare the same function before and after
    first = loss()
    for _ in range(3):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        assert loss().item() < first.item()
    for n, p in scorer.named_parameters():
        if n in base_before:
            assert torch.equal(p, base_before[n]), n
    changed = [n for n, p in trainable_state(scorer).items() if not torch.equal(p, trainable_before[n])]
    assert any("lora_B" in n for n in changed)


def test_step2_leaves_lora_bit_identical(backbones):
    backbone, scorer, _, batch, _ = _setup(backbones["tiny-llama"])
    add_lora(scorer)
    with torch.no_grad():
        for n, p in lora_parameters(scorer).items():
            p.add_(0.01 * torch.randn_like(p))
    set_lora_trainable(scorer, False)
    frozen = {n: p.detach().clone() for n, p in scorer.named_parameters()}
    mapping = torch.nn.Linear(4, backbone.hidden_size)
    optimizer = torch.optim.AdamW(mapping.parameters(), lr=1e-2)
    inputs = torch.randn(len(TARGET), 2, 4)
    scorer.train()
    for _ in range(2):
        loss = bce_loss(scorer(batch["input_ids"], batch["attention_mask"], mapping(inputs),
                               batch["placeholder_positions"]), LABELS)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for n, p in scorer.named_parameters():
        assert torch.equal(p, frozen[n]), n


@pytest.mark.parametrize("name", ["tiny-llama", "minilm"])
def test_save_and_reload_give_identical_scores(backbones, name, tmp_path):
    backbone, scorer, tok, batch, embeds = _setup(backbones[name])
    add_lora(scorer)
    extra = torch.nn.Linear(3, 3)
    with torch.no_grad():
        for p in trainable_state(scorer).values():
            p.add_(0.02 * torch.randn_like(p))
    expected = _scores(scorer, batch, embeds)
    path = save_trainable(scorer, tmp_path / "trained.safetensors", extra={"cie": extra}, metadata={"step": "2"})
    n_saved = sum(p.numel() for p in trainable_state(scorer).values()) + 12
    assert path.stat().st_size < 4 * n_saved + 20_000  # adapters, head and extra only: never the backbone

    torch.manual_seed(123)  # a fresh scorer with different random head / adapter init
    fresh = LLMScorer(backbones[name]())
    extra2 = torch.nn.Linear(3, 3)
    meta = load_trainable(fresh, path, extra={"cie": extra2})
    assert meta["step"] == "2" and fresh.lora_config == scorer.lora_config
    assert torch.equal(_scores(fresh, batch, embeds), expected)
    assert torch.equal(extra2.weight, extra.weight)

    bare = LLMScorer(backbones[name]())
    add_lora(bare, r=4)
    with pytest.raises(UserError, match="does not fit"):
        load_trainable(bare, path, extra={"cie": torch.nn.Linear(3, 3)})


def test_score_batches_in_row_order(backbones):
    backbone, scorer, tok, batch, embeds = _setup(backbones["tiny-qwen2"])
    expected = _scores(scorer, batch, embeds).numpy()
    batches = (collate(tok, rows, pad_id=backbone.pad_token_id, padding_side=backbone.padding_side)
               for rows in bucket_batches(tok.lengths, 4))
    got = score_batches(scorer, batches, embed_fn=lambda b: embeds[b["rows"]])
    assert np.allclose(got, expected, atol=1e-5)


def test_int8_copy_leaves_the_model_alone(backbones):
    backbone, scorer, _, batch, embeds = _setup(backbones["minilm"])
    add_lora(scorer)
    with torch.no_grad():
        for p in lora_parameters(scorer).values():
            p.add_(0.02 * torch.randn_like(p))
    before = _scores(scorer, batch, embeds)
    quantized = quantize_int8(scorer)
    after = _scores(quantized, batch, embeds)
    assert torch.equal(_scores(scorer, batch, embeds), before)
    assert lora_parameters(scorer) and not lora_parameters(quantized)  # merged into the copy
    assert torch.isfinite(after).all() and not torch.equal(after, before)
    with torch.no_grad():  # the quantized copy computes nearly the same [CLS] states
        states = [m.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[:, 0]
                  for m in (scorer, quantized)]
    assert torch.nn.functional.cosine_similarity(*states, dim=-1).min() > 0.95


def test_yes_minus_no_readout_and_mean_pooling_read_what_they_say(backbones):
    from collm_bench.llm.backbone import answer_token_id

    backbone, _, _, batch, _ = _setup(backbones["tiny-llama"], with_ids=False)
    scorer = LLMScorer(backbone, readout="yes-no")
    no = answer_token_id(backbone.tokenizer, "No")
    with torch.no_grad():
        full = backbone.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              position_ids=(batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)).logits[:, -1]
        got = scorer(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(got, full[:, backbone.yes_token_id] - full[:, no], atol=1e-5)

    backbone, _, _, batch, _ = _setup(backbones["minilm"], with_ids=False)
    torch.manual_seed(0)
    scorer = LLMScorer(backbone, pooling="mean")
    scorer.eval()
    with torch.no_grad():
        hidden = backbone.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = scorer.head((hidden * mask).sum(1) / mask.sum(1)).squeeze(-1)
        got = scorer(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="pooling one of"):
        LLMScorer(backbone, pooling="max")


def test_a_parameter_prefix_gets_its_own_learning_rate():
    from collm_bench.llm.tuning import adamw

    head, body = torch.nn.Linear(2, 1), torch.nn.Linear(2, 2)
    named = [*(("scorer.head." + n, p) for n, p in head.named_parameters()),
             *(("scorer.model." + n, p) for n, p in body.named_parameters())]
    optimizer = adamw(named, lr=1e-3, weight_decay=0.1, lr_by_prefix={"scorer.head.": 1e-2})
    groups = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in optimizer.param_groups}
    assert groups == {(1e-2, 0.1): 1, (1e-2, 0.0): 1, (1e-3, 0.1): 1, (1e-3, 0.0): 1}


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen2"])
def test_frozen_prefix_gives_the_same_loss_and_gradients(backbones, name):
    """Step 2 (backbone frozen, only the placeholder embeddings trained) reads the columns before
    the first placeholder without autograd: the same loss and the same gradients, including rows
    whose left padding reaches past that column (the row without history)."""
    backbone, scorer, _, batch, _ = _setup(backbones[name])
    add_lora(scorer)
    with torch.no_grad():
        for p in lora_parameters(scorer).values():
            p.add_(0.05 * torch.randn_like(p))
    set_lora_trainable(scorer, False)
    mapping = torch.nn.Linear(4, backbone.hidden_size)
    inputs = torch.randn(len(TARGET), 2, 4, generator=torch.Generator().manual_seed(2))
    scorer.eval()  # no dropout: the two paths draw it in another order
    # the prompts' own slots, and an early slot in a long row, so that the left padding of short
    # rows reaches past the split (their prefix is all padding)
    early = batch["placeholder_positions"].clone()
    early[int(batch["attention_mask"].argmax(1).argmin()), 0] = 3
    for positions in (batch["placeholder_positions"], early):
        split = scorer._frozen_prefix(mapping(inputs), positions)
        assert split > 0
        results, calls = [], []
        split_forward = scorer._forward_frozen_prefix
        scorer._forward_frozen_prefix = lambda *a: calls.append(a[-1]) or split_forward(*a)
        for flag in (False, True):
            scorer.split_frozen_prefix = flag
            mapping.zero_grad()
            logits = scorer(batch["input_ids"], batch["attention_mask"], mapping(inputs), positions)
            bce_loss(logits, LABELS).backward()
            results.append((logits.detach(), {n: p.grad.clone() for n, p in mapping.named_parameters()}))
        scorer.split_frozen_prefix = True
        del scorer._forward_frozen_prefix
        assert calls == [split]  # the split path ran once, and only when asked
        (plain, plain_grads), (split_logits, split_grads) = results
        assert torch.allclose(plain, split_logits, atol=1e-5), split
        for n in plain_grads:
            assert torch.allclose(plain_grads[n], split_grads[n], atol=1e-5, rtol=1e-4), (split, n)
    assert split == 3 and bool((batch["attention_mask"].argmax(1) > split).any())
    set_lora_trainable(scorer, True)  # step 1 trains the backbone: every column needs autograd
    assert scorer._frozen_prefix(mapping(inputs), positions) == 0
