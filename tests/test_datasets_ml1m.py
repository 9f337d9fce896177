"""ml-1m: the CoLLM protocol on a hand-made ratings.dat / movies.dat. No network."""
import calendar
import io
import zipfile

import pytest

from collm_bench import DataError, UserError
from collm_bench.data.format import load_prepared
from collm_bench_plugins.datasets import movielens_1m as ml1m


def ts(*args):
    return calendar.timegm((*args, *([0] * (6 - len(args)))))


# Months counted from April 2000 = 0: train 14-23 (2001-06..2002-03), valid 24-28
# (2002-04..2002-08), test 29-33 (2002-09..2003-01).
RAW = [  # (user, movie, rating, timestamp), ratings.dat order
    (19, 318, 5, ts(2001, 6, 1)),                 # r1 train (month 14)
    (19, 1234, 5, ts(2001, 6, 1, 0, 0, 30)),      # r2 train
    (7, 1234, 2, ts(2002, 3, 31, 23, 59, 59)),    # r3 train (month 23), label 0
    (7, 50, 4, ts(2002, 4, 1)),                   # r4 valid (month 24)
    (19, 50, 3, ts(2002, 8, 31)),                 # r5 valid (month 28), label 0
    (7, 318, 4, ts(2002, 9, 1)),                  # r6 test (month 29)
    (19, 2000, 4, ts(2003, 1, 31)),               # r7 test (month 33)
    (7, 2000, 5, ts(2003, 2, 1)),                 # r8 month 34: dropped
    (7, 999, 5, ts(2001, 5, 31)),                 # r9 month 13: dropped
    (7, 318, 1, ts(2002, 3, 31, 23, 59, 59)),     # r10 train, same second as r3, label 0
    (7, 777, 5, ts(2001, 7, 1)),                  # r11 movie not in movies.dat: dropped
]
MOVIES = (
    "318::Shawshank Redemption, The (1994)::Drama\n"
    "1234::Sting, The (1973)::Comedy|Crime\n"
    "50::C\u00e9r\u00e9monie, La (1995)::Drama\n"
    "2000::Lethal Weapon (1987)::Action|Comedy|Crime|Drama\n"
    "999::Never Kept (1990)::Drama\n"
)
# By hand. The notebook's merge grouped ratings by movie (318 first: r1, r6, r10; then 1234:
# r2, r3; 50; 2000), so in user 7's tie at 2002-03-31 23:59:59 r10 comes before r3.
# Sorted by (user, timestamp): user 7 -> r10, r3, r4, r6; user 19 -> r1, r2, r5, r7.
# New ids: users 7 -> 1, 19 -> 2; movies by first appearance: 318 -> 1, 1234 -> 2, 50 -> 3, 2000 -> 4.
EXPECTED = [  # (user, item, label, timestamp, split, history)
    (1, 1, 0, ts(2002, 3, 31, 23, 59, 59), "train", ""),
    (1, 2, 0, ts(2002, 3, 31, 23, 59, 59), "train", ""),
    (2, 1, 1, ts(2001, 6, 1), "train", ""),
    (2, 2, 1, ts(2001, 6, 1, 0, 0, 30), "train", "1"),
    (1, 3, 1, ts(2002, 4, 1), "valid", ""),
    (2, 3, 0, ts(2002, 8, 31), "valid", "1 2"),
    (1, 1, 1, ts(2002, 9, 1), "test", "3"),
    (2, 4, 1, ts(2003, 1, 31), "test", "1 2"),
]
TITLES = {1: "Shawshank Redemption, The (1994)", 2: "Sting, The (1973)",
          3: "C\u00e9r\u00e9monie, La (1995)", 4: "Lethal Weapon (1987)"}


def ratings_dat(rows=RAW):
    return "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows)


def write_folder(folder, ratings=None, movies=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_bytes((ratings if ratings is not None else ratings_dat()).encode("latin-1"))
    (folder / "movies.dat").write_bytes((movies if movies is not None else MOVIES).encode("latin-1"))
    (folder / "users.dat").write_text("7::M::25::1::12345\n19::F::35::2::54321\n")
    return folder


def write_zip(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", ratings_dat().encode("latin-1"))
        zf.writestr("ml-1m/movies.dat", MOVIES.encode("latin-1"))
    path.write_bytes(buf.getvalue())
    return path


def rows_of(path):
    inter = load_prepared(path).interactions
    return list(zip(inter["user"], inter["item"], inter["label"], inter["timestamp"], inter["split"],
                    inter["history"]))


def test_hand_computed_protocol(tmp_path):
    ml1m.prepare(tmp_path / "out", str(write_folder(tmp_path / "raw")))
    data = load_prepared(tmp_path / "out")
    assert rows_of(tmp_path / "out") == EXPECTED
    assert dict(zip(data.items["item"], data.items["title"])) == TITLES
    assert list(data.interactions["rating"]) == [1, 2, 5, 5, 4, 3, 4, 4]
    counts = data.manifest["counts"]
    assert (counts["train"], counts["valid"], counts["test"], counts["users"], counts["items"]) == (4, 2, 2, 2, 4)
    assert counts["valid_small"] == 1  # round(0.5 * 2)
    assert data.item_noun == "movie"


def test_zip_and_nested_folder_give_the_same_files(tmp_path):
    ml1m.prepare(tmp_path / "a", str(write_zip(tmp_path / "ml-1m.zip")))
    ml1m.prepare(tmp_path / "b", str(write_folder(tmp_path / "top" / "ml-1m").parent))
    assert load_prepared(tmp_path / "a").manifest["files"] == load_prepared(tmp_path / "b").manifest["files"]
    assert rows_of(tmp_path / "a") == EXPECTED


def test_without_source_a_failed_download_says_to_pass_the_zip(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    seen = {}

    def offline(url, dest, **kwargs):
        seen.update(url=url, **kwargs)
        from collm_bench.data.downloads import download
        return download("file:///nonexistent/ml-1m.zip", dest, **kwargs)  # fails like the real one

    monkeypatch.setattr(ml1m, "download", offline)
    with pytest.raises(UserError, match=r"pass its path with --source"):
        ml1m.prepare(tmp_path / "out", None)
    assert seen["url"] == ml1m.URL and seen["md5"] == ml1m.MD5


def test_cached_zip_is_used_without_source(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    cache = tmp_path / "data" / "raw" / "ml-1m"
    cache.mkdir(parents=True)
    write_zip(cache / "ml-1m.zip")
    monkeypatch.setattr(ml1m, "download", lambda *a, **k: pytest.fail("must not download"))
    ml1m.prepare(tmp_path / "out", None)
    assert rows_of(tmp_path / "out") == EXPECTED


@pytest.mark.parametrize("ratings, movies, match", [
    ("7::318::5\n", None, r"ratings\.dat: line 1: expected 4 fields"),
    ("7::318::5::993706369::1\n", None, r"ratings\.dat: line 1: expected 4 fields"),
    ("7::318::5::yesterday\n", None, r"ratings\.dat: line 1: timestamp 'yesterday' is not an integer"),
    ("7\t318\t5\t993706369\n", None, r"ratings\.dat: unexpected tab character"),
    (ratings_dat() + "\n7::abc::5::993706369\n", None, r"ratings\.dat: line 13: item 'abc' is not an integer"),
    ("", None, r"ratings\.dat: no data rows"),
    (None, MOVIES + "318::Again (1990)::Drama\n", r"movies\.dat: duplicate movie id 318"),
    (None, "318::Shawshank Redemption, The (1994)\n", r"movies\.dat: line 1: expected 3 fields"),
])
def test_malformed_raw_files(tmp_path, ratings, movies, match):
    folder = write_folder(tmp_path / "raw", ratings=ratings, movies=movies)
    with pytest.raises(DataError, match=match):
        ml1m.prepare(tmp_path / "out", str(folder))


def test_bad_sources(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        ml1m.prepare(tmp_path / "out", str(tmp_path / "nope.zip"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no ratings.dat"):
        ml1m.prepare(tmp_path / "out", str(tmp_path / "empty"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/README", "x")
    (tmp_path / "other.zip").write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="expected the GroupLens ml-1m.zip"):
        ml1m.prepare(tmp_path / "out", str(tmp_path / "other.zip"))


def test_release_orders_same_second_ratings_by_one_global_movie_order(ml1m_collm):
    """Why ``build`` groups ratings by movie before the stable sort: in the official release,
    the movies of every same-second group follow one global order (the notebook's merge
    grouped rows by movie), never the per-user order of ratings.dat."""
    release = ml1m_collm
    import pandas as pd

    frame = pd.read_csv(release / "interactions.csv.gz", usecols=["user", "item", "timestamp"])
    frame["pos"] = range(len(frame))
    pairs = frame.merge(frame, on=["user", "timestamp"])
    pairs = pairs[pairs["pos_x"] < pairs["pos_y"]]
    ordered = set(zip(pairs["item_x"], pairs["item_y"]))
    assert len(ordered) > 20_000
    assert not any((b, a) in ordered for a, b in ordered)
    assert sum(a > b for a, b in ordered) > 5_000  # not simply ascending new ids


def test_a_member_that_unpacks_past_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from collm_bench_plugins.datasets import movielens_common

    monkeypatch.setattr(movielens_common, "MAX_MEMBER_BYTES", 100)   # the real limit is 1 GiB
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("a member was read whole"))
    with pytest.raises(DataError, match=r"member 'ml-1m/ratings.dat' unpacks to [\d,]+ bytes, over the 100"):
        ml1m.prepare(tmp_path / "out", str(write_zip(tmp_path / "ml-1m.zip")))


def test_a_raw_fault_found_once_prepared_names_the_dataset_not_its_staging_folder(tmp_path):
    from collm_bench.data.datasets import prepare_dataset

    folder = write_folder(tmp_path / "raw", movies=MOVIES.replace("Sting, The (1973)", " "))
    with pytest.raises(DataError) as info:
        prepare_dataset("ml-1m", root=tmp_path / "data", source=str(folder))
    message = str(info.value)
    assert message.startswith("dataset 'ml-1m', items.csv as prepared from its raw files: item 2 has an empty title")
    assert ".partial-" not in message and "\n" not in message and "--source" in message
    assert not list((tmp_path / "data").rglob("*.partial-*"))
