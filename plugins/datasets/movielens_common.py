"""Readers for the raw MovieLens files and the titles built from them (shared by ml-100k, ml-1m).

Formats read (every malformed line raises ``DataError`` naming the file and the line):

- GroupLens ML-100K ``u.data``: ``user<TAB>item<TAB>rating<TAB>timestamp``, no header;
  ``u.item``: ``id|title|release date|video release date|IMDb URL|19 genre flags``, latin-1.
- RecBole atomic files ``ml-100k.inter`` / ``ml-100k.item``: tab-separated with a typed header
  (``user_id:token``, ``movie_title:token_seq``, ``release_year:token``, ...), UTF-8.
- GroupLens ML-1M ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``;
  ``movies.dat``: ``MovieID::Title::Genres``, latin-1.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from collm_bench.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

_YEAR = re.compile(r"^\d{4}$")
_ENDS_WITH_YEAR = re.compile(r"\(\d{4}\)$")
_LAST_PARENS = re.compile(r"^(.*\S)\s*\(([^()]*)\)$")
UNKNOWN_TITLES = {"unknown", "unkonwn"}  # the RecBole copy spells it "unkonwn"


def movie_title(title: str, year: str = "", fallback_year: str = "") -> str:
    """An ML-1M style title ``Title (Year)`` from a bare title and a release year.

    A title that already ends with ``(YYYY)`` is kept as it is; a year that is not four
    digits (unknown, ``V``) is left out; ``fallback_year`` is used when ``year`` is not one.
    """
    title, year = title.strip(), year.strip()
    if title.lower() in UNKNOWN_TITLES:
        return "unknown"
    if _ENDS_WITH_YEAR.search(title):
        return title
    for candidate in (year, fallback_year.strip()):
        if _YEAR.match(candidate):
            return f"{title} ({candidate})"
    return title


def grouplens_100k_title(title: str, release_date: str) -> str:
    """The title of a GroupLens ``u.item`` row, normalised exactly as ``movie_title``.

    GroupLens titles already carry the year (``Toy Story (1995)``); the RecBole copy split it
    off the last parenthesis, so the same split here makes both sources give the same title.
    """
    title = title.strip()
    date_year = release_date.strip()[-4:] if release_date.strip() else ""
    match = _LAST_PARENS.match(title)
    if match:
        return movie_title(match.group(1), match.group(2), date_year)
    return movie_title(title, "", date_year)


def decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not valid {encoding} text ({exc.reason} at byte {exc.start})") from None


def read_delimited(path: Path, text: str, *, sep: str, names: tuple[str, ...], ints: Iterable[str] = (),
                   floats: Iterable[str] = (), skip: int = 0, min_fields: int | None = None) -> "pd.DataFrame":
    """A delimited text table as a DataFrame of ``names`` (extra trailing fields are an error).

    ``ints`` / ``floats`` name columns that must parse as numbers; line numbers in errors
    count from 1 in the file (``skip`` header lines included).
    """
    import pandas as pd

    if len(sep) > 1:
        if "\t" in text:
            raise DataError(path, "unexpected tab character (fields are separated by " + repr(sep) + ")")
        text = text.replace(sep, "\t")
        sep = "\t"
    lines = text.splitlines()
    body = lines[skip:]
    if not any(ln.strip() for ln in body):
        raise DataError(path, "no data rows")
    rows = []
    width = len(names)
    need = width if min_fields is None else min_fields
    for offset, line in enumerate(body):
        if not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) < need or len(fields) > width:
            raise DataError(path, f"line {offset + skip + 1}: expected {width} fields separated by "
                                  f"{sep!r}, found {len(fields)}")
        rows.append((offset + skip + 1, fields + [""] * (width - len(fields))))
    frame = pd.DataFrame([f for _, f in rows], columns=list(names))
    line_numbers = np.array([n for n, _ in rows])
    for col in ints:
        values = pd.to_numeric(frame[col].str.strip(), errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(path, f"line {line_numbers[i]}: {col} {frame[col].iloc[i]!r} is not an integer")
        frame[col] = values.astype("int64")
    for col in floats:
        values = pd.to_numeric(frame[col].str.strip(), errors="coerce")
        if values.isna().any():
            i = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataError(path, f"line {line_numbers[i]}: {col} {frame[col].iloc[i]!r} is not a number")
        frame[col] = values
    return frame


def read_atomic(path: Path, text: str, required: tuple[str, ...]) -> "pd.DataFrame":
    """A RecBole atomic file (tab-separated, typed header ``name:type``) with ``required`` columns."""
    lines = text.splitlines()
    if not lines:
        raise DataError(path, "empty file")
    header = [h.split(":")[0].strip() for h in lines[0].split("\t")]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(path, f"header lacks column(s) {', '.join(missing)} (found {', '.join(header)})")
    numeric = {"user_id", "item_id", "timestamp"}
    frame = read_delimited(path, text, sep="\t", names=tuple(header), skip=1,
                           ints=[c for c in required if c in numeric],
                           floats=[c for c in required if c == "rating"])
    return frame[list(required)]


def check_ratings(path: Path, frame: "pd.DataFrame") -> None:
    bad = ~frame["rating"].between(0, 5)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"rating {float(frame['rating'].iloc[row]):g} on data row {row + 1} is outside 0-5")
    if (frame["timestamp"] < 0).any():
        raise DataError(path, f"negative timestamp {int(frame['timestamp'].min())}")


def check_items(item_path: Path, items: "pd.DataFrame", ratings: "pd.DataFrame") -> None:
    dup = items["item"].duplicated()
    if dup.any():
        raise DataError(item_path, f"duplicate item id {items['item'][dup].iloc[0]}")
    missing = ~ratings["item"].isin(items["item"])
    if missing.any():
        raise DataError(item_path, f"{int(ratings['item'][missing].nunique())} rated item(s) are not listed, "
                                   f"e.g. item {ratings['item'][missing].iloc[0]}")
    empty = items["title"].str.strip() == ""
    if empty.any():
        raise DataError(item_path, f"item {items['item'][empty].iloc[0]} has an empty title")


# ---- ML-100K -------------------------------------------------------------------------

def parse_grouplens_100k(data_path: Path, data: bytes, item_path: Path, item: bytes):
    """(ratings: user,item,rating,timestamp in file order; items: item,title)."""
    ratings = read_delimited(data_path, decode(data_path, data, "latin-1"), sep="\t",
                             names=("user", "item", "rating", "timestamp"),
                             ints=("user", "item", "timestamp"), floats=("rating",))
    check_ratings(data_path, ratings)
    raw = read_delimited(item_path, decode(item_path, item, "latin-1"), sep="|",
                         names=("item", "title", "release_date") + tuple(f"f{i}" for i in range(21)),
                         ints=("item",), min_fields=3)
    items = raw[["item"]].copy()
    items["title"] = [grouplens_100k_title(t, d) for t, d in zip(raw["title"], raw["release_date"])]
    check_items(item_path, items, ratings)
    return ratings, items


def parse_recbole_100k(inter_path: Path, inter: bytes, item_path: Path, item: bytes):
    """(ratings, items) from RecBole's ``ml-100k.inter`` / ``ml-100k.item``."""
    ratings = read_atomic(inter_path, decode(inter_path, inter, "utf-8"),
                          ("user_id", "item_id", "rating", "timestamp"))
    ratings.columns = ["user", "item", "rating", "timestamp"]
    check_ratings(inter_path, ratings)
    raw = read_atomic(item_path, decode(item_path, item, "utf-8"), ("item_id", "movie_title", "release_year"))
    items = raw[["item_id"]].rename(columns={"item_id": "item"})
    items["title"] = [movie_title(t, y) for t, y in zip(raw["movie_title"], raw["release_year"])]
    check_items(item_path, items, ratings)
    return ratings, items


# ---- ML-1M ---------------------------------------------------------------------------

def parse_ml1m(ratings_path: Path, ratings_data: bytes, movies_path: Path, movies_data: bytes):
    """(ratings: user,item,rating,timestamp in file order; items: item,title) of ML-1M."""
    ratings = read_delimited(ratings_path, decode(ratings_path, ratings_data, "latin-1"), sep="::",
                             names=("user", "item", "rating", "timestamp"),
                             ints=("user", "item", "timestamp"), floats=("rating",))
    check_ratings(ratings_path, ratings)
    movies = read_delimited(movies_path, decode(movies_path, movies_data, "latin-1"), sep="::",
                            names=("item", "title", "genres"), ints=("item",))
    items = movies[["item", "title"]].copy()
    items["title"] = items["title"].str.strip()
    dup = items["item"].duplicated()
    if dup.any():
        raise DataError(movies_path, f"duplicate movie id {items['item'][dup].iloc[0]}")
    return ratings, items


# ---- archives and folders ------------------------------------------------------------

MAX_MEMBER_BYTES = 1 << 30   # ML-1M's ratings.dat is 24 MB; ML-25M's largest file 680 MB


def zip_members(path: Path, wanted: tuple[str, ...]) -> dict[str, bytes] | None:
    """The bytes of the members whose base names are ``wanted`` (None when one is missing)."""
    try:
        with zipfile.ZipFile(path) as zf:
            by_name: dict[str, str] = {}
            for name in zf.namelist():
                base = name.rsplit("/", 1)[-1]
                if base in wanted and base not in by_name:
                    by_name[base] = name
            if len(by_name) < len(wanted):
                return None
            for base, name in by_name.items():   # a zip bomb would fill memory before any check
                size = zf.getinfo(name).file_size
                if size > MAX_MEMBER_BYTES:
                    raise DataError(path, f"member {name!r} unpacks to {size:,} bytes, over the {MAX_MEMBER_BYTES:,} "
                                          "a MovieLens file can be: not a MovieLens archive")
            return {base: zf.read(name) for base, name in by_name.items()}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(path, f"not a readable zip file ({exc})") from None


def find_files(folder: Path, wanted: tuple[str, ...], subfolders: tuple[str, ...] = ()) -> dict[str, Path] | None:
    """``wanted`` files in ``folder`` or one of its ``subfolders`` (all in the same place)."""
    for place in (folder, *(folder / s for s in subfolders)):
        if all((place / w).is_file() for w in wanted):
            return {w: place / w for w in wanted}
    return None
