"""Guards on what a dataset folder names (``collm_bench.cache.identity``: they only refuse, so
calling one from the code that reads data changes no result's identity).

Every file read because a manifest names it is named by a relative path inside the dataset
folder and is a regular file (a symlink to one is followed: users link large data files, and
the checksum protects the content), else it is refused in one line naming the entry, before
anything is opened, hashed or echoed.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from collm_bench._util.paths import is_safe_relative
from collm_bench.errors import DataError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"
__guards__ = ("check_regular_file", "check_manifest", "check_timestamps", "check_ratings")

SHA256 = re.compile(r"[0-9a-f]{64}")
FIXED = ("manifest.json", "interactions.csv", "interactions.csv.gz", "items.csv")


def check_regular_file(path: Path, what: str) -> None:
    """Refuse ``path`` when it exists and is not a regular file (a directory, a FIFO, a device:
    reading one fails or hangs); a missing file is the reader's to report."""
    try:
        mode = os.stat(path).st_mode   # follows symlinks
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DataError(path, f"{what}: unreadable ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a file")
        raise DataError(path, f"{what} is {kind}, not a regular file")


def check_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The files a manifest lists (relative, inside, regular, each with a sha256), the folder's
    fixed files, and the fields that reach options and prompts (``sequence_len``, ``item_noun``)."""
    where = Path(folder) / "manifest.json"
    for name in FIXED[1:]:
        check_regular_file(Path(folder) / name, name)
    files = manifest.get("files")
    if files is not None and not isinstance(files, dict):
        raise DataError(where, "'files' must map file names to sha256 digests")
    for name, digest in (files or {}).items():
        if not is_safe_relative(name):
            raise DataError(where, f"'files' lists {name!r}: a file is named by a relative path inside the "
                                   "dataset folder")
        if not (isinstance(digest, str) and SHA256.fullmatch(digest)):
            raise DataError(where, f"'files' gives {name!r} the digest {str(digest)[:80]!r}, not a sha256 "
                                   "(64 lower-case hex digits)")
        check_regular_file(Path(folder) / name, f"{name!r} (listed in manifest.json)")
    length = manifest.get("sequence_len")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= 10_000):
        raise DataError(where, f"sequence_len must be an integer from 0 to 10000 (history items), got {length!r}")
    noun = manifest.get("item_noun")
    if noun is not None and not (isinstance(noun, str) and noun.strip() and len(noun) <= 40 and noun.isprintable()):
        raise DataError(where, f"item_noun must be a short word (the prompts' word for an item), got {str(noun)[:60]!r}")


def _first_not_finite(column: Any) -> int | None:
    """The position of the first value of a pandas ``column`` that is not a finite number
    (missing, text, an infinity), or None. Integer columns hold none; float columns are checked
    as a whole; only text columns are read value by value."""
    kind = column.dtype.kind
    if kind in "iub":
        return None
    if kind == "f":
        bad = column.isna() | column.isin([float("inf"), float("-inf")])   # Series methods: no import here
        return int(bad.to_numpy().argmax()) if bad.any() else None
    for row, value in enumerate(column.tolist()):
        try:
            if abs(float(value)) < float("inf"):   # False for NaN and the infinities
                continue
        except (TypeError, ValueError):
            pass
        return row
    return None


def check_timestamps(path: Path, frame: Any) -> None:
    """Refuse an infinite timestamp (``inf`` parses as a number, then orders every history as if
    it came last); a missing or non-numeric one is the reader's to report, before this."""
    row = _first_not_finite(frame["timestamp"])
    if row is not None:
        raise DataError(path, f"infinite timestamp {float(frame['timestamp'].iloc[row])} on data row {row + 1}: a "
                              "timestamp orders the user's rows, give a finite number")


def check_ratings(path: Path, frame: Any) -> None:
    """Refuse a ``rating`` column (optional) holding a missing, non-numeric or infinite value: a
    prompt that lists ratings (ReLLa's) would fail on it in the middle of tuning."""
    row = _first_not_finite(frame["rating"]) if "rating" in frame else None
    if row is not None:
        value = frame["rating"].iloc[row:row + 1].tolist()[0]   # a Python value, as written
        shown = "missing" if value != value else repr(value)
        raise DataError(path, f"rating {shown} on data row {row + 1} is not a finite number")
