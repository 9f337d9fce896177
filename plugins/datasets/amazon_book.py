"""amazon-book: Amazon Books (2018 release) with the CoLLM protocol (docs/protocol.md, "Datasets").

``Books_5.json.gz`` (5-core reviews, one JSON object per line) merged on ``asin`` with
``meta_Books.json.gz`` (deduplicated on asin keeping the last row; title from it); rows with a
missing value (or an empty title) dropped; only 2017 kept (UTC); users and items with more
than 20 ratings in 2017 kept, in one pass; label 1 when rating == 5; train = January-November;
December sorted by timestamp (stable), first half valid, second half test; duplicates kept;
``valid_small`` = 25% of valid (seed 2023). Ids 1..N in order of first appearance in the
merged table, which (as the notebook's right merge) follows the metadata's order, then the
reviews' file order.

Both files are streamed line by line: only reviews from 2017 are parsed as JSON (the year is
read from the raw line first) and only the metadata of their books, so the ~27M reviews fit
in memory. ``source``: a folder holding both files (``.json.gz`` or ``.json``).
"""
from __future__ import annotations

import gzip
import json
import re
import sys
import zlib
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from collm_bench import DatasetSpec, DataError, UserError, hookimpl
from collm_bench.data.format import write_prepared

from collm_bench_plugins.datasets.common import canonical_layout, first_appearance_ids, raw_dir

if TYPE_CHECKING:
    import pandas as pd

NAME = "amazon-book"
REVIEWS = "Books_5.json"
META = "meta_Books.json"
YEAR_START = 1483228800  # 2017-01-01T00:00:00Z
YEAR_END = 1514764800    # 2018-01-01T00:00:00Z
DECEMBER = 1512086400    # 2017-12-01T00:00:00Z
MIN_RATINGS = 20         # kept: more than this many ratings in 2017
VALID_SMALL_FRAC = 0.25
PROGRESS_EVERY = 5_000_000
_TIME = re.compile(rb'"unixReviewTime"\s*:\s*(-?\d+)')
_ASIN = re.compile(rb'"asin"\s*:\s*"((?:[^"\\]|\\.)*)"')
PROTOCOL = {
    "merge": "Books_5 reviews inner-joined on asin with meta_Books (deduplicated, keep last); "
             "rows with missing values or an empty title dropped",
    "filter": "2017 only (UTC); users and items with more than 20 ratings in 2017, one pass",
    "label": "1 if rating == 5 else 0",
    "split": "train January-November 2017; December sorted by timestamp (stable): first half "
             "valid, second half test",
    "ids": "1..N in order of first appearance in the merged table (metadata order, then review order)",
    "history": "items the user labelled positive in earlier rows (all splits, rows sorted by user "
               "then timestamp, stable), oldest first, no cap",
    "valid_small": "25% sample of valid: DataFrame.sample(frac=0.25, random_state=2023)",
}
DESCRIPTION = ("Amazon Books 2017 with the CoLLM protocol (label rating == 5; train Jan-Nov, "
               "December halves valid/test). --source: a folder with Books_5.json.gz and "
               "meta_Books.json.gz (Amazon review data 2018, UCSD).")


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name=NAME, prepare=prepare, description=DESCRIPTION, protocol="1"))


def prepare(target: Path, source: str | None) -> None:
    reviews_path, meta_path = locate(source)
    frame, items = build(reviews_path, meta_path)
    write_prepared(target, frame, items, name=NAME, protocol=PROTOCOL, item_noun="book", sequence_len=20,
                   description="Amazon Books (2018 release, 5-core), CoLLM protocol")


def locate(source: str | None) -> tuple[Path, Path]:
    """The reviews and metadata files in ``source`` (or the raw cache)."""
    folder = Path(source).expanduser() if source else raw_dir(NAME)
    if source and not folder.exists():
        raise UserError(f"{NAME}: source {folder}: no such file or directory")
    if folder.is_file():
        folder = folder.parent
    found = []
    for stem in (REVIEWS, META):
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            where = f"{folder}" if source else f"the raw cache {folder}"
            raise UserError(f"{NAME}: no {stem}.gz in {where}; download Books_5.json.gz and "
                            f"meta_Books.json.gz (Amazon review data 2018, "
                            f"https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/) and pass "
                            f"their folder with --source")
        found.append(path)
    return found[0], found[1]


def build(reviews_path: Path, meta_path: Path) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Stream both raw files and apply the protocol: (interactions, items)."""
    import pandas as pd

    reviews, asins = read_reviews(reviews_path)
    meta = read_meta(meta_path, set(asins))
    # Inner join, ordered as the notebook's right merge: metadata order, then review order.
    position = np.array([meta[a][0] if a in meta else -1 for a in asins], dtype=np.int64)
    titled = np.array([a in meta and meta[a][1].strip() != "" for a in asins], dtype=bool)
    asin_code = reviews["asin"]
    keep = titled[asin_code]
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(position[asin_code[idx]], kind="stable")]
    rows = {k: v[idx] for k, v in reviews.items()}

    # One-pass activity filter on the 2017 counts.
    user_count = np.bincount(rows["user"])
    item_count = np.bincount(rows["asin"])
    active = (user_count[rows["user"]] > MIN_RATINGS) & (item_count[rows["asin"]] > MIN_RATINGS)
    rows = {k: v[active] for k, v in rows.items()}
    if not len(rows["user"]):
        raise DataError(reviews_path, f"no user and book with more than {MIN_RATINGS} ratings in 2017")

    user, _ = first_appearance_ids(rows["user"])
    item, item_codes = first_appearance_ids(rows["asin"])
    frame = pd.DataFrame({
        "user": user, "item": item, "rating": rows["rating"].astype("int64"),
        "timestamp": rows["timestamp"],
    })
    frame["label"] = (frame["rating"] >= 5).astype("int8")
    december = frame["timestamp"].to_numpy() >= DECEMBER
    train = frame[~december].assign(split="train")
    late = frame[december].sort_values("timestamp", kind="stable")
    half = len(late) // 2
    valid = late.iloc[:half].assign(split="valid")
    test = late.iloc[half:].assign(split="test")
    frame = pd.concat([train, valid, test], ignore_index=True)
    frame = canonical_layout(frame, valid_small_frac=VALID_SMALL_FRAC)
    items = pd.DataFrame({"item": np.arange(1, len(item_codes) + 1),
                          "title": [meta[asins[c]][1].strip() for c in item_codes]})
    return frame, items


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if number % PROGRESS_EVERY == 0:
                    print(f"{NAME}: {path.name}: {number:,} lines read", file=sys.stderr)
                yield number, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, f"truncated or corrupt gzip file ({exc})") from None


def _object_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, stripped line) of every non-blank line, each checked to look like one JSON
    object (the full parse is left to ``_parse``, which most lines are spared)."""
    for number, line in _lines(path):
        line = line.strip()
        if not line:
            continue
        if not (line.startswith(b"{") and line.endswith(b"}")):
            raise DataError(path, f"line {number}: not a JSON object")
        yield number, line


def _parse(path: Path, number: int, line: bytes) -> dict:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise DataError(path, f"line {number}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"line {number}: not a JSON object")
    return obj


def read_reviews(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """2017 reviews with no missing value: arrays user, asin (codes), rating, timestamp, in file
    order, and the asin of each code."""
    users: dict[str, int] = {}
    asins: dict[str, int] = {}
    cols = {"user": array("q"), "asin": array("q"), "rating": array("d"), "timestamp": array("q")}
    for number, line in _object_lines(path):
        match = _TIME.search(line)
        if match and not YEAR_START <= int(match.group(1)) < YEAR_END:
            continue  # another year: skip the JSON parse (most lines)
        obj = _parse(path, number, line)
        user, asin, rating, stamp = (obj.get("reviewerID"), obj.get("asin"), obj.get("overall"),
                                     obj.get("unixReviewTime"))
        if user is None or asin is None or rating is None or stamp is None:
            continue  # a missing value: the row is dropped
        if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not 0 <= rating <= 5:
            raise DataError(path, f"line {number}: overall {rating!r} is not a rating from 0 to 5")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise DataError(path, f"line {number}: unixReviewTime {stamp!r} is not an integer")
        if not YEAR_START <= stamp < YEAR_END:
            continue
        cols["user"].append(users.setdefault(str(user), len(users)))
        cols["asin"].append(asins.setdefault(str(asin), len(asins)))
        cols["rating"].append(float(rating))
        cols["timestamp"].append(stamp)
    if not users:
        raise DataError(path, "no review from 2017")
    arrays = {k: np.frombuffer(v, dtype=np.int64 if v.typecode == "q" else np.float64).copy()
              for k, v in cols.items()}
    return arrays, list(asins)


def read_meta(path: Path, wanted: set[str]) -> dict[str, tuple[int, str]]:
    """asin -> (line number, title) of the last metadata row of each wanted asin.

    Rows whose title contains ``getTime`` (unformatted rows) are skipped first, as in the
    notebook; a missing title is an empty one.
    """
    meta: dict[str, tuple[int, str]] = {}
    for number, line in _object_lines(path):
        match = _ASIN.search(line)
        if match and b"\\" not in match.group(1) and match.group(1).decode("utf-8", "replace") not in wanted:
            continue  # a book no 2017 review names: skip the JSON parse
        obj = _parse(path, number, line)
        asin = obj.get("asin")
        if asin is None or str(asin) not in wanted:
            continue
        title = obj.get("title")
        title = "" if title is None else str(title)
        if "getTime" in title:
            continue
        meta[str(asin)] = (number, title)
    return meta
