"""synthetic: seeded generation, options through --source, planted signals, scale."""
import time

import numpy as np
import pytest

from collm_bench import UserError
from collm_bench.data.format import load_prepared
from collm_bench.data.history import derive_histories, parse_history_column
from collm_bench_plugins.datasets import synthetic
from collm_bench_plugins.datasets.synthetic import GENRES, generate_synthetic


def auc(labels, scores):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(labels, scores)


def test_generation_is_seeded_and_sized():
    a, items_a = generate_synthetic(3000, 100, 80, seed=3)
    b, items_b = generate_synthetic(3000, 100, 80, seed=3)
    c, _ = generate_synthetic(3000, 100, 80, seed=4)
    assert a.equals(b) and items_a.equals(items_b)
    assert not a.equals(c)
    assert len(a) == 3000
    assert a["user"].between(1, 100).all() and a["item"].between(1, 80).all()
    assert list(items_a["item"]) == list(range(1, 81))
    assert not a.duplicated(["user", "item"]).any()
    assert set(a["split"]) == {"train", "valid", "test"}
    assert a["rating"].between(1, 5).all()
    assert ((a["rating"] > 3).astype(int) == a["label"]).all()
    assert 0.5 < a["label"].mean() < 0.6


def test_split_is_by_month_of_2021():
    frame, _ = generate_synthetic(5000, seed=0)
    month = frame["timestamp"].to_numpy().astype("datetime64[s]").astype("datetime64[M]").astype(str)
    assert set(month[frame["split"] == "train"]) == {f"2021-{m:02d}" for m in range(1, 11)}
    assert set(month[frame["split"] == "valid"]) == {"2021-11"}
    assert set(month[frame["split"] == "test"]) == {"2021-12"}


def test_default_sizes_fit_small_and_large_row_counts():
    assert synthetic.default_sizes(20_000, None, None) == (500, 333)
    users, items = synthetic.default_sizes(300, None, None)
    assert users * items >= 600
    frame, _ = generate_synthetic(300, seed=1)
    assert len(frame) == 300 and not frame.duplicated(["user", "item"]).any()
    with pytest.raises(UserError, match="need more users x items"):
        generate_synthetic(1000, 10, 10)


def test_titles_carry_the_genre_words_and_a_year():
    _, items = generate_synthetic(2000, seed=0)
    keywords = {w for words in GENRES.values() for w in words}
    for title in items["title"]:
        assert sum(w in keywords for w in title.split()) >= 1
        assert title.endswith(")") and title[-5:-1].isdigit()


def _genre_of(items):
    keyword = {w: g for g, words in GENRES.items() for w in words}
    return items["title"].map(lambda t: next(keyword[w] for w in t.split() if w in keyword))


def test_planted_text_signal_genre_taste_predicts_test_labels():
    frame, items = generate_synthetic(30_000, seed=2)
    frame = frame.merge(items.assign(genre=_genre_of(items))[["item", "genre"]], on="item")
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    rate = train.groupby(["user", "genre"])["label"].agg(["sum", "count"])
    rate = ((rate["sum"] + 1) / (rate["count"] + 2)).rename("p").reset_index()
    scored = test.merge(rate, on=["user", "genre"], how="left").fillna({"p": 0.5})
    assert auc(scored["label"], scored["p"]) > 0.65


def test_planted_collaborative_signal_beyond_genres_and_popularity():
    """Item-item co-preference (what MF learns) predicts test labels within the same genre."""
    frame, items = generate_synthetic(30_000, 300, 200, seed=5)
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    n_users, n_items = 301, 201
    signed = np.zeros((n_users, n_items))
    signed[train["user"], train["item"]] = np.where(train["label"] == 1, 1.0, -1.0)
    # low-rank reconstruction of the signed train matrix, then score test pairs
    u, s, vt = np.linalg.svd(signed, full_matrices=False)
    recon = (u[:, :8] * s[:8]) @ vt[:8]
    item_mean = train.groupby("item")["label"].mean().reindex(range(n_items)).fillna(0.5).to_numpy()
    score = recon[test["user"], test["item"]]
    assert auc(test["label"], score) > 0.6
    assert auc(test["label"], score) > auc(test["label"], item_mean[test["item"]]) + 0.02


def test_prepare_parses_options_and_writes_histories(tmp_path):
    synthetic.prepare(tmp_path / "out", "rows=2000, users=100,items=80,seed=7")
    data = load_prepared(tmp_path / "out")
    assert len(data.interactions) == 2000
    assert data.manifest["protocol"]["options"] == {"rows": 2000, "users": 100, "items": 80, "seed": 7}
    inter = data.interactions
    hist = derive_histories(inter["user"].to_numpy(), inter["item"].to_numpy(), inter["label"].to_numpy(),
                            inter["timestamp"].to_numpy())
    assert list(inter["history"]) == hist.as_strings()
    assert parse_history_column(inter["history"])[:5] == [list(map(int, h.split())) for h in hist.as_strings()[:5]]
    assert list(inter["split"].drop_duplicates()) == ["train", "valid", "test"]
    valid = inter["split"] == "valid"
    assert inter.loc[valid, "valid_small"].sum() == round(0.5 * valid.sum())


def test_prepare_defaults_and_history_switch(tmp_path):
    synthetic.prepare(tmp_path / "default", None)
    assert len(load_prepared(tmp_path / "default").interactions) == 20_000
    synthetic.prepare(tmp_path / "nohist", "rows=500,history=no")
    assert "history" not in load_prepared(tmp_path / "nohist").interactions


@pytest.mark.parametrize("source, match", [
    ("rowz=10", r"unknown option 'rowz' \(did you mean 'rows'\?\)"),
    ("rows=many", r"option 'rows' expects int, got 'many'"),
    ("rows", r"option 'rows' must look like key=value"),
    ("history=maybe", r"option 'history' got 'maybe'; allowed: one of auto, yes, no"),
    ("rows=0", r"option 'rows' got 0; allowed: >= 1"),
])
def test_bad_options_are_clear_errors(tmp_path, source, match):
    with pytest.raises(UserError, match=match):
        synthetic.prepare(tmp_path / "out", source)


def test_a_million_rows_generate_fast():
    start = time.perf_counter()
    frame, items = generate_synthetic(1_000_000, seed=0)
    elapsed = time.perf_counter() - start
    assert len(frame) == 1_000_000 and len(items) == 16_666
    assert elapsed < 10, f"1M rows took {elapsed:.1f} s"


@pytest.mark.slow
def test_four_million_rows_prepare_well_under_a_minute(tmp_path):
    start = time.perf_counter()
    frame, items = generate_synthetic(4_000_000, seed=0)
    generated = time.perf_counter() - start
    assert len(frame) == 4_000_000 and len(items) == 66_666
    assert generated < 15, f"generating 4M rows took {generated:.1f} s"
    synthetic.prepare(tmp_path / "out", "rows=4000000")
    assert time.perf_counter() - start < 60
    assert load_prepared(tmp_path / "out").manifest["counts"]["users"] == 100_000
