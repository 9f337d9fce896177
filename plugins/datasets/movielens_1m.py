"""ml-1m: MovieLens-1M with the CoLLM protocol (docs/protocol.md, "Datasets").

Ratings joined with the movie titles; label 1 when rating > 3; months counted from April 2000
(= 0): train 14-23, valid 24-28, test 29-33, other months dropped (from histories too). No
cold-start filtering. Ids remapped to 1..N after the histories are built, as in the official
release: users in ascending MovieLens id, items in order of first appearance when all kept
rows are sorted by (user, timestamp). ``valid_small`` = 50% of valid, seed 2023.

Row order follows the authors' notebook: its inner merge of ratings with movies grouped the
ratings by movie (movies in order of first appearance in ``ratings.dat``), which decides the
order of ratings a user gave in the same second; the sort by (user, timestamp) is stable. The
release agrees: its 9,570 same-second groups order their movies by one global order (no pair
of movies appears in both orders), which per-user file order would not give.

Raw data: ``source`` (the GroupLens ``ml-1m.zip`` or its extracted folder), else the raw
cache ``<data dir>/raw/ml-1m/ml-1m.zip``, else a GroupLens download.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from collm_bench import DatasetSpec, UserError, hookimpl
from collm_bench.data.format import write_prepared
from collm_bench.data.downloads import download

from collm_bench_plugins.datasets.common import (
    SPLIT_ORDER, canonical_layout, first_appearance_ids, month_index, month_number, raw_dir,
)
from collm_bench_plugins.datasets.movielens_common import find_files, parse_ml1m, zip_members

if TYPE_CHECKING:
    import pandas as pd

NAME = "ml-1m"
URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
MD5 = "c4d9eecfca2ab87c1945afe126590906"
FILES = ("ratings.dat", "movies.dat")
FIRST_MONTH = (2000, 4)
SPLIT_MONTHS = {"train": range(14, 24), "valid": range(24, 29), "test": range(29, 34)}
VALID_SMALL_FRAC = 0.5
PROTOCOL = {
    "label": "1 if rating > 3 else 0",
    "split": "by month, months counted from 2000-04: train 14-23, valid 24-28, test 29-33; "
             "other months dropped",
    "ids": "remapped to 1..N after histories: users by MovieLens id, items by first appearance "
           "in (user, timestamp) order",
    "history": "items the user labelled positive in earlier rows (all splits, rows sorted by user "
               "then timestamp, stable), oldest first, no cap",
    "valid_small": "50% sample of valid: DataFrame.sample(frac=0.5, random_state=2023)",
}
DESCRIPTION = ("MovieLens-1M with the CoLLM protocol (by month from 2000-04: train 14-23, valid "
               "24-28, test 29-33; label rating > 3). --source: the GroupLens ml-1m.zip or its folder.")


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name=NAME, prepare=prepare, description=DESCRIPTION, protocol="1"))


def prepare(target: Path, source: str | None) -> None:
    ratings, items, origin = load_raw(source)
    frame, items = build(ratings, items)
    write_prepared(target, frame, items, name=NAME, protocol=PROTOCOL, item_noun="movie", sequence_len=25,
                   description=f"MovieLens-1M, CoLLM protocol, from {origin}")


def build(ratings: "pd.DataFrame", items: "pd.DataFrame") -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Raw ratings (user, item, rating, timestamp; file order) and movies -> (interactions, items)."""
    import pandas as pd

    ratings = ratings[ratings["item"].isin(items["item"])]
    # The notebook's pd.merge(rating, movies, how="inner") grouped rows by movie, movies in
    # order of first appearance (pandas < 2.2); rows of one movie stay in file order.
    movie_rank, _ = first_appearance_ids(ratings["item"].to_numpy())
    ratings = ratings.iloc[np.argsort(movie_rank, kind="stable")]
    month = month_index(ratings["timestamp"].to_numpy()) - month_number(*FIRST_MONTH)
    split = np.full(len(ratings), "", dtype=object)
    for name, months in SPLIT_MONTHS.items():
        split[np.isin(month, list(months))] = name
    keep = split != ""
    frame = ratings.loc[keep, ["user", "item", "rating", "timestamp"]].copy()
    frame["rating"] = frame["rating"].astype("int64")
    frame["label"] = (frame["rating"] > 3).astype("int8")
    frame["split"] = split[keep]
    frame = frame.reset_index(drop=True)

    # New ids in the official order: sort the (train, valid, test) concatenation by
    # (user, timestamp), stably; users then come in MovieLens order, items by first appearance.
    rank = frame["split"].map(SPLIT_ORDER).to_numpy()
    order = np.lexsort((np.arange(len(frame)), rank, frame["timestamp"].to_numpy(), frame["user"].to_numpy()))
    new_user, _ = first_appearance_ids(frame["user"].to_numpy()[order])
    new_item, old_items = first_appearance_ids(frame["item"].to_numpy()[order])
    frame.loc[order, "user"] = new_user
    frame.loc[order, "item"] = new_item
    frame = canonical_layout(frame, valid_small_frac=VALID_SMALL_FRAC)

    titles = items.set_index("item")["title"]
    new_items = pd.DataFrame({"item": np.arange(1, len(old_items) + 1),
                                 "title": titles.loc[old_items].to_numpy()})
    return frame, new_items


def load_raw(source: str | None) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    if source:
        return _from_path(Path(source).expanduser())
    zip_path = raw_dir(NAME) / "ml-1m.zip"
    if not zip_path.is_file():
        try:
            download(URL, zip_path, md5=MD5, hint="download ml-1m.zip from "
                     "https://grouplens.org/datasets/movielens/1m/ and pass its path with --source")
        except UserError as exc:
            raise UserError(f"{NAME}: {exc}") from None
    return _from_path(zip_path)


def _from_path(path: Path) -> tuple["pd.DataFrame", "pd.DataFrame", str]:
    if not path.exists():
        raise UserError(f"{NAME}: source {path}: no such file or directory")
    if path.is_file():
        members = zip_members(path, FILES)
        if members is None:
            raise UserError(f"{NAME}: {path} holds no ratings.dat and movies.dat "
                            f"(expected the GroupLens ml-1m.zip)")
        ratings, items = parse_ml1m(path / "ratings.dat", members["ratings.dat"],
                                    path / "movies.dat", members["movies.dat"])
        return ratings, items, f"GroupLens {path.name}"
    found = find_files(path, FILES, ("ml-1m",))
    if not found:
        raise UserError(f"{NAME}: {path} holds no ratings.dat and movies.dat")
    ratings, items = parse_ml1m(found["ratings.dat"], found["ratings.dat"].read_bytes(),
                                found["movies.dat"], found["movies.dat"].read_bytes())
    return ratings, items, "GroupLens ratings.dat/movies.dat"
