"""The built-in collaborative encoders (mf, lightgcn, sasrec, din) on tiny data."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from collm_bench.encoders.training import build_encoder, fit, make_batch, predict, seed_everything  # noqa: E402
from collm_bench.data.interactions import build_interactions  # noqa: E402
from collm_bench.api.registry import load_registry  # noqa: E402
from collm_bench.testing import check_encoder, tiny_dataset  # noqa: E402

ENCODERS = ("mf", "lightgcn", "sasrec", "din")


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_interactions(tiny_dataset(tmp_path_factory.mktemp("tiny") / "tiny"))


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_options(spec, **overrides):
    """Default options with small models, so that tiny-data tests stay fast."""
    small = {"dim": 12, "max_epochs": 2, "patience": 2, "batch_size": 32}
    fields = spec.options.__dataclass_fields__
    values = {k: v for k, v in {**small, **overrides}.items() if k in fields}
    return spec.options(**values)


def build(spec, data, seed=0, **overrides):
    opts = small_options(spec, **overrides)
    seed_everything(seed)
    return build_encoder(spec, opts, data), opts


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_follows_the_contract(registry, name):
    """Shapes, option fields, training lowers the loss, same seed same losses (conformance kit)."""
    check_encoder(registry.get("encoder", name), steps=15)


@pytest.mark.parametrize("name", ENCODERS)
def test_shapes_and_rep_dim(registry, data, name):
    spec = registry.get("encoder", name)
    model, opts = build(spec, data)
    batch = make_batch(data, data.rows("train")[:5], opts.history_len)
    assert model(batch).shape == (5,)
    user, item = model.representations(batch)
    assert user.shape == item.shape == (5, model.rep_dim)
    assert model.rep_dim == 12  # DIN: three fields of 12 // 3


@pytest.mark.parametrize("name", ENCODERS)
def test_same_seed_same_fit(registry, data, name):
    spec = registry.get("encoder", name)
    results = []
    for _ in range(2):
        model, opts = build(spec, data, seed=3)
        result = fit(model, data, lr=opts.lr, weight_decay=opts.weight_decay, batch_size=opts.batch_size,
                     max_epochs=2, patience=2, history_len=opts.history_len, seed=3)
        scores = predict(model, data, data.rows("test"), history_len=opts.history_len)
        results.append((result.valid_curve, scores))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_mf_has_no_biases_and_scores_by_dot_product(registry, data):
    model, _ = build(registry.get("encoder", "mf"), data)
    assert {n for n, _ in model.named_parameters()} == {"user_emb.weight", "item_emb.weight"}
    batch = make_batch(data, data.rows("train")[:4], 0)
    u, i = model.representations(batch)
    torch.testing.assert_close(model(batch), (u * i).sum(-1))
    assert model.user_emb.weight.std().item() == pytest.approx(0.1, rel=0.3)


# --- LightGCN ---------------------------------------------------------------------------

def test_lightgcn_graph_has_positive_train_edges_only(registry, data):
    model, _ = build(registry.get("encoder", "lightgcn"), data)
    adj = model.adjacency.to_dense()
    train = data.rows("train")
    positive = train[data.label[train] == 1]
    edges = {(int(u), int(i)) for u, i in zip(data.user[positive], data.item[positive])}
    n_users = data.n_users
    found = {(int(r), int(c) - n_users) for r, c in adj.nonzero().tolist() if r < n_users}
    assert found == edges
    torch.testing.assert_close(adj, adj.T)
    # Symmetric normalisation: entry (u, i) = 1 / sqrt(deg(u) deg(i)).
    deg = (adj > 0).sum(1).float()
    u, i = next(iter(edges))
    assert adj[u, n_users + i].item() == pytest.approx(1 / np.sqrt(deg[u].item() * deg[n_users + i].item()))


def test_lightgcn_propagates_once_per_training_step(registry, data):
    spec = registry.get("encoder", "lightgcn")
    model, opts = build(spec, data)
    n_train = len(data.rows("train"))
    fit(model, data, lr=opts.lr, weight_decay=opts.weight_decay, batch_size=16, max_epochs=1, patience=1)
    steps = -(-n_train // 16)
    # One propagation per step, plus one for the whole validation pass (cached across batches).
    assert model.propagations == steps + 1


def test_lightgcn_eval_cache_equals_fresh_propagation_and_is_invalidated(registry, data):
    model, _ = build(registry.get("encoder", "lightgcn"), data)
    batch = make_batch(data, data.rows("valid"), 0)
    model.eval()
    with torch.no_grad():
        first = model(batch)
        count = model.propagations
        second = model(batch)
        assert model.propagations == count  # served from the cache
        users, items = model.propagate()
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, (users[batch["user"]] * items[batch["item"]]).sum(-1))

    # An optimizer step (an in-place parameter change) invalidates the cache ...
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(batch).sum().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), first)
        # ... and so does loading a state dict while staying in eval mode.
        state = copy.deepcopy(model.state_dict())
        model.user_emb.weight.add_(1.0)
        changed = model(batch)
        model.load_state_dict(state)
        restored = model(batch)
        users, items = model.propagate()
    assert not torch.allclose(changed, restored)
    torch.testing.assert_close(restored, (users[batch["user"]] * items[batch["item"]]).sum(-1))


def test_lightgcn_eval_with_gradients_does_not_cache(registry, data):
    """A frozen-mode encoder tuned inside CoLLM (eval mode, gradients on) must not reuse a graph."""
    model, _ = build(registry.get("encoder", "lightgcn"), data)
    model.eval()
    batch = make_batch(data, data.rows("train")[:8], 0)
    for _ in range(2):
        model(batch).sum().backward()  # a cached graph would fail the second backward


# --- SASRec -----------------------------------------------------------------------------

def sasrec(registry, data, history_len=12):
    model, _ = build(registry.get("encoder", "sasrec"), data, history_len=history_len, dim=16, heads=2)
    return model.eval()


def test_sasrec_is_causal(registry, data):
    model = sasrec(registry, data)
    gen = torch.Generator().manual_seed(0)
    history = torch.randint(1, data.n_items, (4, 12), generator=gen)
    history[0, :5] = 0
    with torch.no_grad():
        before = model.sequence_output(history, last_only=False)
        changed = history.clone()
        changed[:, 8] = (changed[:, 8] % (data.n_items - 1)) + 1
        after = model.sequence_output(changed, last_only=False)
    torch.testing.assert_close(before[:, :8], after[:, :8])
    assert not torch.allclose(before[:, 8:], after[:, 8:])


def test_sasrec_is_padding_invariant_and_last_only_matches(registry, data):
    model = sasrec(registry, data)
    gen = torch.Generator().manual_seed(1)
    items = torch.randint(1, data.n_items, (3, 6), generator=gen)
    short = torch.cat([torch.zeros(3, 2, dtype=torch.long), items], dim=1)  # padded to 8
    long = torch.cat([torch.zeros(3, 6, dtype=torch.long), items], dim=1)   # padded to 12
    short[2, :5] = 0
    long[2, :9] = 0
    with torch.no_grad():
        a = model.sequence_output(short)
        b = model.sequence_output(long)
        full = model.sequence_output(long, last_only=False)[:, -1]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(b, full)


def test_sasrec_empty_history_is_finite(registry, data):
    model = sasrec(registry, data)
    batch = {"user": torch.tensor([1, 2]), "item": torch.tensor([1, 2]), "history": torch.zeros(2, 12, dtype=torch.long)}
    assert torch.isfinite(model(batch)).all()
    model.train()
    assert torch.isfinite(model(batch)).all()


def test_sasrec_user_rep_is_last_output_item_rep_is_item_embedding(registry, data):
    model = sasrec(registry, data)
    batch = make_batch(data, data.rows("valid")[:6], 12)
    with torch.no_grad():
        user, item = model.representations(batch)
        torch.testing.assert_close(user, model.sequence_output(batch["history"], last_only=False)[:, -1])
        torch.testing.assert_close(item, model.item_emb(batch["item"]))
        torch.testing.assert_close(model(batch), (user * item).sum(-1))


# --- DIN --------------------------------------------------------------------------------

def test_din_ignores_padded_history_positions(registry, data):
    model, _ = build(registry.get("encoder", "din"), data, dropout=0.0)
    rows = data.rows("valid")[:10]
    short = make_batch(data, rows, 5)
    long = dict(short, history=torch.cat([torch.zeros(10, 7, dtype=torch.long), short["history"]], dim=1))
    # Training mode too: padded positions are left out of Dice's batch statistics.
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            torch.testing.assert_close(model(short), model(long))


def test_din_representations_layout(registry, data):
    model, _ = build(registry.get("encoder", "din"), data)
    model.eval()
    batch = make_batch(data, data.rows("valid")[:6], 25)
    f = model.field
    with torch.no_grad():
        user, item = model.representations(batch)
        target = model.item_emb(batch["item"])
    torch.testing.assert_close(user[:, :f], target)
    torch.testing.assert_close(user[:, 2 * f:], model.user_emb(batch["user"]))
    torch.testing.assert_close(item, torch.cat([target] * 3, dim=1))
    # Empty histories pool to zero.
    empty = dict(batch, history=torch.zeros_like(batch["history"]))
    with torch.no_grad():
        assert model.representations(empty)[0][:, f:2 * f].abs().max().item() == 0.0
