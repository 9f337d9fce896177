"""ml-100k: raw formats (GroupLens and RecBole), the month split, titles, sources. No network."""
import calendar
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from collm_bench import DataError, UserError
from collm_bench.data.format import load_prepared
from collm_bench_plugins.datasets import movielens_100k as ml100k
from collm_bench_plugins.datasets.movielens_common import grouplens_100k_title, movie_title


def ts(*args):
    return calendar.timegm((*args, *([0] * (6 - len(args)))))


# (user, item, rating, timestamp) in raw file order
RAW = [
    (2, 10, 4, ts(1997, 10, 1)),               # 1 train
    (1, 20, 5, ts(1997, 12, 31, 23, 59, 59)),  # 2 train, last second of December
    (1, 10, 3, ts(1997, 9, 20)),               # 3 train, label 0
    (1, 30, 4, ts(1998, 1, 1)),                # 4 valid, first second of January
    (2, 20, 2, ts(1998, 2, 28, 23, 59, 59)),   # 5 valid, label 0
    (2, 30, 5, ts(1998, 3, 1)),                # 6 test
    (1, 40, 4, ts(1998, 4, 22)),               # 7 test
    (1, 10, 5, ts(1998, 5, 1)),                # 8 outside the protocol's months: dropped
    (2, 40, 4, ts(1997, 10, 1)),               # 9 train, same second as row 1: file order
    (3, 20, 4, ts(1998, 1, 15)),               # 10 valid
]
FLAGS = "|".join(["0"] * 19)
U_ITEM = (
    f"10|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{FLAGS}\n"
    f"20|unknown||||{FLAGS}\n"
    f"30|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||http://x|{FLAGS}\n"
    f"40|C\u00e9r\u00e9monie, La (1995)|01-Jan-1996||http://x|{FLAGS}\n"
    f"50|Never Rated (1990)|01-Jan-1990||http://x|{FLAGS}\n"
)
REC_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "10\tToy Story\t1995\tAnimation Children's Comedy\n"
    "20\tunkonwn\tunkonwn\tunknown\n"
    "30\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation Children's\n"
    "40\tC\u00e9r\u00e9monie, La\t1995\tDrama\n"
    "50\tNever Rated\t1990\tDrama\n"
)
# (user, item, label, split, history), computed by hand from RAW
EXPECTED = [
    (1, 10, 0, "train", ""), (1, 20, 1, "train", ""),
    (2, 10, 1, "train", ""), (2, 40, 1, "train", "10"),
    (1, 30, 1, "valid", "20"), (2, 20, 0, "valid", "10 40"), (3, 20, 1, "valid", ""),
    (1, 40, 1, "test", "20 30"), (2, 30, 1, "test", "10 40"),
]
TITLES = {10: "Toy Story (1995)", 20: "unknown",
          30: "Land Before Time III: The Time of the Great Giving (1995)", 40: "C\u00e9r\u00e9monie, La (1995)"}


def u_data(rows=RAW):
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows)


def rec_inter(rows=RAW):
    return "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + u_data(rows)


def write_grouplens(folder, data=None, item=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(data if data is not None else u_data())
    (folder / "u.item").write_bytes((item if item is not None else U_ITEM).encode("latin-1"))
    return folder


def write_recbole(folder, inter=None, item=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ml-100k.inter").write_text(inter if inter is not None else rec_inter(), encoding="utf-8")
    (folder / "ml-100k.item").write_text(item if item is not None else REC_ITEM, encoding="utf-8")
    return folder


def zip_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.data", u_data())
        zf.writestr("ml-100k/u.item", U_ITEM.encode("latin-1"))
        zf.writestr("ml-100k/README", "readme")
    return buf.getvalue()


def rows_of(path):
    inter = load_prepared(path).interactions
    return list(zip(inter["user"], inter["item"], inter["label"], inter["split"], inter["history"]))


def test_grouplens_folder_gives_the_hand_computed_split(tmp_path):
    ml100k.prepare(tmp_path / "out", str(write_grouplens(tmp_path / "raw")))
    data = load_prepared(tmp_path / "out")
    assert rows_of(tmp_path / "out") == EXPECTED
    assert dict(zip(data.items["item"], data.items["title"])) == TITLES
    assert data.item_noun == "movie"
    assert data.manifest["counts"]["train"] == 4 and data.manifest["counts"]["test"] == 2
    valid = data.interactions[data.interactions["split"] == "valid"]
    assert valid["valid_small"].sum() == 2  # round(0.5 * 3)
    picked = np.random.RandomState(2023).permutation(3)[:2]  # DataFrame.sample's draw
    assert sorted(np.flatnonzero(valid["valid_small"].to_numpy())) == sorted(picked)
    assert (data.interactions.loc[data.interactions["split"] != "valid", "valid_small"] == 0).all()
    assert list(data.interactions["rating"]) == [3, 5, 4, 4, 4, 2, 4, 4, 5]


def test_recbole_files_and_the_zip_give_the_same_files(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(zip_bytes())
    ml100k.prepare(tmp_path / "a", str(tmp_path / "ml-100k.zip"))
    ml100k.prepare(tmp_path / "b", str(write_recbole(tmp_path / "rec")))
    ml100k.prepare(tmp_path / "c", str(write_grouplens(tmp_path / "top" / "ml-100k").parent))
    files = [load_prepared(tmp_path / d).manifest["files"] for d in "abc"]
    assert files[0] == files[1] == files[2]
    assert rows_of(tmp_path / "b") == EXPECTED


@pytest.mark.parametrize("title, year, expected", [
    ("Toy Story", "1995", "Toy Story (1995)"),
    ("Toy Story (1995)", "1995", "Toy Story (1995)"),
    ("Land Before Time III (1995)", "V", "Land Before Time III (1995)"),
    ("Some Film", "", "Some Film"),
    ("Some Film", "unknown", "Some Film"),
    ("unkonwn", "unkonwn", "unknown"),
])
def test_movie_title(title, year, expected):
    assert movie_title(title, year) == expected


def test_grouplens_title_uses_the_release_date_when_the_title_has_no_year():
    assert grouplens_100k_title("Some Film", "01-Jan-1994") == "Some Film (1994)"
    assert grouplens_100k_title("Scream of Stone (Schrei aus Stein) (1991)", "08-Mar-1996") == \
        "Scream of Stone (Schrei aus Stein) (1991)"
    assert grouplens_100k_title("unknown", "") == "unknown"


def test_fetch_order_grouplens_unreachable_then_recbole_wheel_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    calls = []

    def no_download(url, dest, **kwargs):
        calls.append(("download", url, kwargs.get("timeout")))
        raise UserError(f"could not download {url}: Name or service not known")

    def fake_member(requirement, member, dest, *, cache_dir, wheel_sha256, member_sha256):
        calls.append(("wheel", requirement, member))
        assert wheel_sha256 == ml100k.RECBOLE_WHEEL_SHA256 and member_sha256
        text = rec_inter() if member.endswith(".inter") else REC_ITEM
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        return dest

    monkeypatch.setattr(ml100k, "download", no_download)
    monkeypatch.setattr(ml100k, "fetch_wheel_member", fake_member)
    monkeypatch.setattr(ml100k, "sha256_file", lambda path: dict(
        (name, sha) for name, (_, sha) in ml100k.RECBOLE_FILES.items())[path.name])
    ml100k.prepare(tmp_path / "out", None)
    assert calls[0] == ("download", ml100k.GROUPLENS_URL, ml100k.DOWNLOAD_TIMEOUT)
    assert ml100k.DOWNLOAD_TIMEOUT <= 15
    assert [c[2] for c in calls[1:]] == ["recbole/dataset_example/ml-100k/ml-100k.inter",
                                         "recbole/dataset_example/ml-100k/ml-100k.item"]
    assert rows_of(tmp_path / "out") == EXPECTED
    assert "RecBole" in load_prepared(tmp_path / "out").manifest["description"]
    calls.clear()
    ml100k.prepare(tmp_path / "again", None)  # the raw cache: nothing fetched twice
    assert calls == []


def test_grouplens_download_is_used_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    calls = []

    def fake_download(url, dest, **kwargs):
        calls.append(url)
        assert kwargs["md5"] == ml100k.GROUPLENS_MD5
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(zip_bytes())
        return dest

    def no_wheel(*args, **kwargs):
        raise AssertionError("the wheel must not be fetched when GroupLens answers")

    monkeypatch.setattr(ml100k, "download", fake_download)
    monkeypatch.setattr(ml100k, "fetch_wheel_member", no_wheel)
    ml100k.prepare(tmp_path / "out", None)
    ml100k.prepare(tmp_path / "out2", None)
    assert calls == [ml100k.GROUPLENS_URL]
    assert (tmp_path / "data" / "raw" / "ml-100k" / "ml-100k.zip").is_file()
    assert rows_of(tmp_path / "out") == EXPECTED


def test_every_source_failing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))

    def fail(*args, **kwargs):
        raise UserError("offline")

    monkeypatch.setattr(ml100k, "download", fail)
    monkeypatch.setattr(ml100k, "fetch_wheel_member", fail)
    with pytest.raises(UserError, match="--source"):
        ml100k.prepare(tmp_path / "out", None)


def test_bad_source_paths(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        ml100k.prepare(tmp_path / "out", str(tmp_path / "missing.zip"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither u.data"):
        ml100k.prepare(tmp_path / "out", str(tmp_path / "empty"))
    (tmp_path / "other.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="other.zip: not a readable zip"):
        ml100k.prepare(tmp_path / "out", str(tmp_path / "other.zip"))


@pytest.mark.parametrize("data, item, match", [
    ("1\t10\t4\n", None, r"u\.data: line 1: expected 4 fields"),
    ("1\t10\t4\t874965478\t9\n", None, r"u\.data: line 1: expected 4 fields"),
    ("x\t10\t4\t874965478\n", None, r"u\.data: line 1: user 'x' is not an integer"),
    ("1\t10\tfive\t874965478\n", None, r"u\.data: line 1: rating 'five' is not a number"),
    ("1\t10\t9\t874965478\n", None, r"u\.data: rating 9 on data row 1 is outside 0-5"),
    ("", None, r"u\.data: no data rows"),
    ("1\t99\t4\t874965478\n", None, r"u\.item: 1 rated item\(s\) are not listed, e.g. item 99"),
    (None, U_ITEM + f"10|Again (1990)|||x|{FLAGS}\n", r"u\.item: duplicate item id 10"),
    (None, "abc|Title (1990)|\n", r"u\.item: line 1: item 'abc' is not an integer"),
    (None, "10\n", r"u\.item: line 1: expected 24 fields"),
])
def test_malformed_grouplens_files(tmp_path, data, item, match):
    folder = write_grouplens(tmp_path / "raw", data=data, item=item)
    with pytest.raises(DataError, match=match):
        ml100k.prepare(tmp_path / "out", str(folder))


@pytest.mark.parametrize("inter, item, match", [
    ("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t874965478\n", None,
     r"ml-100k\.inter: header lacks column\(s\) rating"),
    (None, "item_id:token\tmovie_title:token_seq\n10\tToy Story\n", r"ml-100k\.item: header lacks column\(s\) release_year"),
    (None, REC_ITEM + "60\tToo\tmany\tfields\there\n", r"ml-100k\.item: line 7: expected 4 fields"),
    ("", None, r"ml-100k\.inter: empty file"),
])
def test_malformed_recbole_files(tmp_path, inter, item, match):
    folder = write_recbole(tmp_path / "rec", inter=inter, item=item)
    with pytest.raises(DataError, match=match):
        ml100k.prepare(tmp_path / "out", str(folder))


def test_invalid_utf8_in_recbole_file(tmp_path):
    folder = write_recbole(tmp_path / "rec")
    (folder / "ml-100k.item").write_bytes(REC_ITEM.encode("latin-1"))
    with pytest.raises(DataError, match=r"ml-100k\.item: not valid utf-8"):
        ml100k.prepare(tmp_path / "out", str(folder))


def test_build_keeps_only_rated_items_and_the_raw_ids(tmp_path):
    ratings = pd.DataFrame(RAW, columns=["user", "item", "rating", "timestamp"])
    items = pd.DataFrame({"item": [10, 20, 30, 40, 50], "title": ["a", "b", "c", "d", "e"]})
    frame, used = ml100k.build(ratings, items)
    assert list(used["item"]) == [10, 20, 30, 40]
    assert set(frame["user"]) == {1, 2, 3}


@pytest.mark.slow
def test_real_ml100k_counts(tmp_path, monkeypatch):
    """Prepares the real data (PyPI, or the cache under $COLLM_BENCH_DATA)."""
    import os

    if "COLLM_BENCH_DATA" not in os.environ:
        monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    ml100k.prepare(tmp_path / "out", None)
    data = load_prepared(tmp_path / "out")
    counts = data.manifest["counts"]
    assert (counts["train"], counts["valid"], counts["test"]) == (52_899, 25_086, 22_015)
    assert (counts["users"], counts["items"]) == (943, 1682)
    assert counts["valid_small"] == 12_543
    assert data.items.set_index("item").loc[1, "title"] == "Toy Story (1995)"
