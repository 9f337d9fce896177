"""amazon-book: the CoLLM protocol on tiny hand-made review and metadata files. No network."""
import calendar
import gzip
import json

import pytest

from collm_bench import DataError, UserError
from collm_bench.data.format import load_prepared
from collm_bench_plugins.datasets import amazon_book as amazon


def ts(*args):
    return calendar.timegm((*args, *([0] * (6 - len(args)))))


def review(user, asin, overall, stamp, **extra):
    obj = {"overall": overall, "verified": True, "reviewTime": "x", "reviewerID": user, "asin": asin,
           "reviewerName": "Someone", "reviewText": 'Great "book", 5 stars', "summary": "ok",
           "unixReviewTime": stamp}
    obj.update(extra)
    return obj


REVIEWS = [  # file order; the comments give the row names used below
    review("A", "X", 5.0, ts(2017, 1, 10)),           # 1  train
    review("A", "Y", 4.0, ts(2017, 2, 10)),           # 2  train, label 0
    review("A", "Z", 5.0, ts(2017, 12, 5, 12)),       # 3  December
    review("B", "X", 5.0, ts(2017, 3, 1)),            # 4  train
    review("B", "Y", 5.0, ts(2017, 12, 5, 12)),       # 5  December, same second as 3
    review("B", "Z", 3.0, ts(2017, 12, 20)),          # 6  December, label 0
    review("C", "X", 2.0, ts(2017, 12, 1)),           # 7  December (first second), label 0
    review("C", "Z", 4.0, ts(2017, 4, 1)),            # 8  train, label 0
    review("C", "Z", 5.0, ts(2017, 12, 20)),          # 9  December; C-Z twice: duplicates kept
    review("D", "X", 5.0, ts(2016, 12, 31, 23, 59, 59)),  # 10 2016: dropped
    review("D", "Y", 5.0, ts(2017, 5, 1)),            # 11 counted for Y, but D has 1 rating: dropped
    review("D", "W", 5.0, ts(2017, 5, 2)),            # 12 W has no title: dropped at the merge
    review("A", "V", 5.0, ts(2017, 6, 1)),            # 13 V has no metadata: dropped
    review("B", "Z", 5.0, ts(2017, 12, 20)),          # 14 December, duplicate of B-Z
    {"reviewerID": "A", "asin": "X", "unixReviewTime": ts(2017, 7, 1)},  # 15 no rating: dropped
    review("A", "X", 4.0, ts(2018, 1, 1)),            # 16 2018: dropped
]
META = [
    {"category": [], "title": "Old Y title", "asin": "Y"},
    {"category": ["Books"], "title": "Book X", "also_buy": ["Y", "Z"], "asin": "X"},
    {"category": [], "title": "Book Y", "asin": "Y"},  # duplicate asin: the last row wins
    {"category": [], "title": "Book Z", "asin": "Z", "price": "$1"},
    {"category": [], "asin": "W"},  # no title
    {"category": [], "title": "var x = new Date().getTime();", "asin": "Q"},
    {"category": [], "title": "Never reviewed", "asin": "U"},
]
# By hand, with "more than 2 ratings" as the activity threshold. After the merge (2017 rows
# with a title): A 3 rows, B 4, C 3, D 1 (dropped); X 3, Y 3 (incl. D's), Z 5. One pass: Y
# keeps its 2 remaining rows although it has only 2 once D is gone. Merged order = metadata
# order (X, Y, Z), then file order: 1, 4, 7 | 2, 5 | 3, 6, 8, 9, 14; ids: A1 B2 C3, X1 Y2 Z3.
# December in merged order 7, 5, 3, 6, 9, 14; sorted by time (stable): 7, 5, 3 | 6, 9, 14.
EXPECTED = [  # (user, item, label, timestamp, split, history)
    (1, 1, 1, ts(2017, 1, 10), "train", ""),
    (1, 2, 0, ts(2017, 2, 10), "train", "1"),
    (2, 1, 1, ts(2017, 3, 1), "train", ""),
    (3, 3, 0, ts(2017, 4, 1), "train", ""),
    (1, 3, 1, ts(2017, 12, 5, 12), "valid", "1"),
    (2, 2, 1, ts(2017, 12, 5, 12), "valid", "1"),
    (3, 1, 0, ts(2017, 12, 1), "valid", ""),
    (2, 3, 0, ts(2017, 12, 20), "test", "1 2"),
    (2, 3, 1, ts(2017, 12, 20), "test", "1 2"),
    (3, 3, 1, ts(2017, 12, 20), "test", ""),
]


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for line in lines:
            fh.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def write_raw(folder, reviews=REVIEWS, meta=META):
    folder.mkdir(parents=True, exist_ok=True)
    write_gz(folder / "Books_5.json.gz", reviews)
    write_gz(folder / "meta_Books.json.gz", meta)
    return folder


@pytest.fixture
def low_threshold(monkeypatch):
    monkeypatch.setattr(amazon, "MIN_RATINGS", 2)


def rows_of(path):
    inter = load_prepared(path).interactions
    return list(zip(inter["user"], inter["item"], inter["label"], inter["timestamp"], inter["split"],
                    inter["history"]))


def test_hand_computed_protocol(tmp_path, low_threshold):
    amazon.prepare(tmp_path / "out", str(write_raw(tmp_path / "raw")))
    data = load_prepared(tmp_path / "out")
    assert rows_of(tmp_path / "out") == EXPECTED
    assert list(data.items["title"]) == ["Book X", "Book Y", "Book Z"]
    assert data.item_noun == "book"
    assert data.manifest["counts"]["valid_small"] == 1  # round(0.25 * 3)
    assert list(data.interactions["rating"]) == [5, 4, 5, 4, 5, 5, 2, 3, 5, 5]


def test_default_threshold_is_more_than_20_ratings(tmp_path):
    assert amazon.MIN_RATINGS == 20
    with pytest.raises(DataError, match="no user and book with more than 20 ratings in 2017"):
        amazon.prepare(tmp_path / "out", str(write_raw(tmp_path / "raw")))


def test_plain_json_files_and_a_file_as_source(tmp_path, low_threshold):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "Books_5.json").write_text("".join(json.dumps(r) + "\n" for r in REVIEWS))
    (folder / "meta_Books.json").write_text("".join(json.dumps(m) + "\n" for m in META))
    amazon.prepare(tmp_path / "out", str(folder / "Books_5.json"))
    assert rows_of(tmp_path / "out") == EXPECTED


def test_missing_files_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    with pytest.raises(UserError, match="no Books_5.json.gz in the raw cache.*--source"):
        amazon.prepare(tmp_path / "out", None)
    (tmp_path / "half").mkdir()
    write_gz(tmp_path / "half" / "Books_5.json.gz", REVIEWS)
    with pytest.raises(UserError, match="no meta_Books.json.gz in"):
        amazon.prepare(tmp_path / "out", str(tmp_path / "half"))
    with pytest.raises(UserError, match="no such file"):
        amazon.prepare(tmp_path / "out", str(tmp_path / "nope"))


def test_raw_cache_is_used_without_source(tmp_path, monkeypatch, low_threshold):
    monkeypatch.setenv("COLLM_BENCH_DATA", str(tmp_path / "data"))
    write_raw(tmp_path / "data" / "raw" / "amazon-book")
    amazon.prepare(tmp_path / "out", None)
    assert rows_of(tmp_path / "out") == EXPECTED


@pytest.mark.parametrize("bad, match", [
    ('{"reviewerID": "A", "asin": "X", "overall": 5.0, "unixReviewTime": 1490000000,}',
     r"Books_5\.json\.gz: line 17: not valid JSON"),
    ("reviewerID,asin", r"Books_5\.json\.gz: line 17: not a JSON object"),
    ('["A", "X", 5.0, 1490000000]', r"Books_5\.json\.gz: line 17: not a JSON object"),
    (review("A", "X", "five", ts(2017, 3, 3)), r"line 17: overall 'five' is not a rating"),
    (review("A", "X", 5.0, "March"), r"line 17: unixReviewTime 'March' is not an integer"),
])
def test_malformed_review_lines(tmp_path, bad, match):
    folder = write_raw(tmp_path / "raw", reviews=REVIEWS + [bad])
    with pytest.raises(DataError, match=match):
        amazon.prepare(tmp_path / "out", str(folder))


def test_malformed_metadata_line(tmp_path):
    folder = write_raw(tmp_path / "raw", meta=META + ['{"asin": "X", "title": "Book X"'])
    with pytest.raises(DataError, match=r"meta_Books\.json\.gz: line 8: not a JSON object"):
        amazon.prepare(tmp_path / "out", str(folder))


def test_truncated_gzip(tmp_path):
    folder = write_raw(tmp_path / "raw", reviews=REVIEWS * 50)
    data = (folder / "Books_5.json.gz").read_bytes()
    (folder / "Books_5.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"Books_5\.json\.gz: truncated or corrupt gzip"):
        amazon.prepare(tmp_path / "out", str(folder))


def test_only_2017_lines_are_parsed(tmp_path, monkeypatch, low_threshold):
    """Lines of other years are skipped before the JSON parse (the real file has ~27M)."""
    parsed = []
    real = amazon._parse
    monkeypatch.setattr(amazon, "_parse", lambda path, n, line: parsed.append((path.name, n)) or real(path, n, line))
    amazon.prepare(tmp_path / "out", str(write_raw(tmp_path / "raw")))
    review_lines = [n for name, n in parsed if name.startswith("Books")]
    assert 10 not in review_lines and 16 not in review_lines and 1 in review_lines
    meta_lines = [n for name, n in parsed if name.startswith("meta")]
    assert meta_lines == [1, 2, 3, 4, 5]  # Q and U are named by no 2017 review
