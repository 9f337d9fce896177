"""The prepared dataset format ``collm-bench-dataset/1``: read, validate, write.

A directory with ``interactions.csv.gz`` (or ``.csv``), ``items.csv`` and ``manifest.json``
(see docs/data-format.md). Every malformed input raises ``DataError`` naming the file and the problem.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collm_bench._util.strict_json import check_strict_json
from collm_bench.data._checks import check_manifest, check_ratings, check_regular_file, check_timestamps
from collm_bench.errors import DataError, UserError
from collm_bench._util.paths import WRITE_ERRNOS, check_name, write_error

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "collm-bench-dataset/1"
SPLITS = ("train", "valid", "test")
REQUIRED = ("user", "item", "label", "timestamp", "split")
OPTIONAL = ("rating", "valid_small", "history")
INTERACTION_FILES = ("interactions.csv.gz", "interactions.csv")
GZIP_LEVEL = 6  # 3.7x faster than 9 on 4M rows, 2% larger


@dataclass
class DatasetHead:
    """What a prepared dataset says of itself in ``manifest.json`` (its files checked against
    their digests, not read): enough to name a run before any data is loaded."""

    path: Path
    name: str
    manifest: dict[str, Any]

    @property
    def item_noun(self) -> str:
        """The word prompts use for an item (movie, book, item)."""
        return str(self.manifest.get("item_noun", "item"))

    @property
    def sequence_len(self) -> int | None:
        """How many past positives sequence encoders (SASRec, DIN) read on this dataset, when
        the dataset says (the paper: 25 on ML-1M, 20 on Amazon-Book)."""
        value = self.manifest.get("sequence_len")
        return int(value) if value else None

    @property
    def sha256(self) -> str:
        """One digest for the whole dataset: its files' digests and what prompts and encoders
        read from the manifest (item noun, sequence length). Stage cache keys use it."""
        blob = json.dumps({"files": self.manifest.get("files", {}), "item_noun": self.item_noun,
                           "sequence_len": self.sequence_len}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


@dataclass
class PreparedDataset(DatasetHead):
    """A validated prepared dataset. ``interactions`` keeps file order (history depends on it)."""

    interactions: "pd.DataFrame"
    items: "pd.DataFrame"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def interactions_file(path: Path) -> Path:
    for name in INTERACTION_FILES:
        if (path / name).exists():
            return path / name
    raise DataError(path / INTERACTION_FILES[0], "missing file (expected interactions.csv.gz or interactions.csv)")


def read_manifest(path: Path) -> dict[str, Any]:
    mpath = Path(path) / "manifest.json"
    if not mpath.exists():
        raise DataError(mpath, "missing file")
    check_regular_file(mpath, "manifest.json")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(mpath, f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(manifest, dict):
        raise DataError(mpath, "must hold a JSON object")
    if manifest.get("format") != FORMAT:
        raise DataError(mpath, f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def read_head(path: str | Path, *, verify: bool = True) -> DatasetHead:
    """A prepared dataset directory's manifest, checked, and its files checked against the
    digests it lists (``verify``); the data is not read."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "not a directory in the prepared format")
    manifest = read_manifest(path)
    check_manifest(path, manifest)
    inter_path = interactions_file(path)
    items_path = path / "items.csv"
    if not items_path.exists():
        raise DataError(items_path, "missing file")
    files = manifest.get("files") or {}
    if not isinstance(files, dict):
        raise DataError(path / "manifest.json", "'files' must map file names to sha256 digests")
    unlisted = [p.name for p in (inter_path, items_path) if p.name not in files]
    if unlisted:  # the dataset's identity (stage cache keys) is made of these digests
        raise DataError(path / "manifest.json", f"'files' lacks the sha256 of {', '.join(unlisted)}")
    if verify:
        for fname, expected in files.items():
            fpath = path / fname
            if not fpath.exists():
                raise DataError(fpath, "missing file (listed in manifest.json)")
            actual = sha256_file(fpath)
            if actual != expected:
                raise DataError(fpath, f"sha256 mismatch: manifest says {expected[:12]}..., file is {actual[:12]}...")
    name = manifest.get("name", path.name)
    try:  # the name goes into run ids, hence into paths
        check_name("dataset name", name)
    except UserError as exc:
        raise DataError(path / "manifest.json", f"'name': {exc}") from None
    return DatasetHead(path, name, manifest)


def load_prepared(path: str | Path, *, verify: bool = True) -> PreparedDataset:
    """Read and validate a prepared dataset directory."""
    import pandas as pd

    head = read_head(path, verify=verify)
    path, manifest = head.path, head.manifest
    inter_path = interactions_file(path)
    items_path = path / "items.csv"
    inter = _read_csv(inter_path, dtype={"split": str, "history": str, "user": str, "item": str})
    _check_columns(inter_path, inter, REQUIRED, OPTIONAL)
    for col in ("user", "item"):
        _require_ids(inter_path, inter, col)
    if not pd.api.types.is_numeric_dtype(inter["timestamp"]):
        bad = pd.to_numeric(inter["timestamp"], errors="coerce").isna()
        raise DataError(inter_path, f"non-numeric timestamp {inter['timestamp'][bad].iloc[0]!r} "
                                    f"on data row {int(bad.idxmax()) + 1}")
    if inter["timestamp"].isna().any():
        raise DataError(inter_path, f"missing timestamp on data row {int(inter['timestamp'].isna().idxmax()) + 1}")
    check_timestamps(inter_path, inter)
    check_ratings(inter_path, inter)
    _require_binary(inter_path, inter, "label")
    if "valid_small" in inter:
        _require_binary(inter_path, inter, "valid_small")
    if inter["split"].isna().any():
        raise DataError(inter_path, f"missing split on data row {int(inter['split'].isna().idxmax()) + 1}")
    bad_split = ~inter["split"].isin(SPLITS)
    if bad_split.any():
        names = sorted(set(inter["split"][bad_split].astype(str)))[:3]
        raise DataError(inter_path, f"unknown split name(s) {', '.join(map(repr, names))}; expected train, valid, test")
    if "history" in inter:
        inter["history"] = inter["history"].fillna("")

    items = _read_csv(items_path, dtype={"title": str, "item": str})
    _check_columns(items_path, items, ("item", "title"), ())
    _require_ids(items_path, items, "item")
    inter["user"] = _typed_ids(inter["user"])
    inter["item"], items["item"] = _typed_ids(inter["item"], items["item"])
    empty = items["title"].isna() | (items["title"].str.strip() == "")
    if empty.any():
        row = int(empty.idxmax())
        raise DataError(items_path, f"item {items['item'].iloc[row]} has an empty title")
    if items["item"].duplicated().any():
        raise DataError(items_path, f"duplicate item id {items['item'][items['item'].duplicated()].iloc[0]}")
    missing = ~inter["item"].isin(items["item"])
    if missing.any():
        raise DataError(items_path, f"{int(missing.sum())} interaction(s) have items without a title, "
                                    f"e.g. item {inter['item'][missing].iloc[0]}")
    return PreparedDataset(path, head.name, manifest, inter, items)


def _read_csv(path: Path, dtype: dict[str, Any]) -> "pd.DataFrame":
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(path, "empty file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataError(path, f"truncated or corrupt file ({exc})") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(path, f"cannot parse as CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(path, "no data rows")
    return frame


def _check_columns(path: Path, frame: "pd.DataFrame", required: tuple, optional: tuple) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing required column(s): {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in required and c not in optional]
    if extra:
        raise DataError(path, f"unexpected column(s): {', '.join(map(str, extra))}")


def _require_ids(path: Path, frame: "pd.DataFrame", col: str) -> None:
    """Ids are read as text: non-empty, without whitespace (the ``history`` column and
    prompts' readers split on it)."""
    values = frame[col]
    if values.isna().any():
        raise DataError(path, f"missing {col} id on data row {int(values.isna().idxmax()) + 1}")
    spaced = values.str.contains(r"\s", regex=True)
    if spaced.any():
        raise DataError(path, f"{col} id {values[spaced].iloc[0]!r} on data row {int(spaced.idxmax()) + 1} "
                              "contains whitespace; ids may not")
    floats = values.str.fullmatch(r"-?[0-9]+\.[0-9]*")
    if floats.any():  # pandas writes integer ids as 3.0 once a column has a missing value
        raise DataError(path, f"{col} id {values[floats].iloc[0]!r} on data row {int(floats.idxmax()) + 1} is a "
                              "decimal number: write integer ids (or names that are not numbers)")


def _typed_ids(*columns: "pd.Series") -> Any:
    """Integer ids where every value (of all ``columns`` together) is written as an integer in
    canonical form (``7``, not ``07``: two spellings of one number would merge), else the
    strings as written. The type decides the order of dense indices, not what predictions say."""
    import pandas as pd

    canonical = all(values.str.fullmatch(r"0|-?[1-9][0-9]{0,17}").all() for values in columns)
    out = [pd.to_numeric(values).astype("int64") if canonical else values.astype(object) for values in columns]
    return out[0] if len(out) == 1 else tuple(out)


def _require_binary(path: Path, frame: "pd.DataFrame", col: str) -> None:
    import pandas as pd

    values = frame[col]
    ok = pd.to_numeric(values, errors="coerce").isin([0, 1])  # "1" read as text is fine
    if not ok.all():
        bad = values[~ok].iloc[0]
        shown = repr(bad.item() if hasattr(bad, "item") else bad)
        raise DataError(path, f"{col} must be 0 or 1, found {shown} on data row {int((~ok).idxmax()) + 1}")
    frame[col] = pd.to_numeric(values).astype("int8")


def write_prepared(
    target: str | Path,
    interactions: "pd.DataFrame",
    items: "pd.DataFrame",
    *,
    name: str,
    protocol: dict[str, Any] | str,
    description: str = "",
    item_noun: str = "item",
    sequence_len: int | None = None,
) -> Path:
    """Write a prepared dataset atomically (each file via temp + rename) and return its path."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    cols = [c for c in REQUIRED + OPTIONAL if c in interactions.columns]
    inter_path = target / "interactions.csv.gz"
    # mtime=0 and no file name (it would be the random temp name) keep the gzip bytes,
    # and so the sha256, reproducible.
    with atomic_path(inter_path) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0,
                                                   compresslevel=GZIP_LEVEL) as gz:
            interactions[cols].to_csv(gz, index=False)
    with atomic_path(target / "items.csv") as tmp:
        items[["item", "title"]].to_csv(tmp, index=False)
    counts: dict[str, Any] = {s: int((interactions["split"] == s).sum()) for s in SPLITS}
    if "valid_small" in interactions:
        counts["valid_small"] = int(interactions["valid_small"].sum())
    counts["users"] = int(interactions["user"].nunique())
    counts["items"] = int(interactions["item"].nunique())
    counts["positive_rate"] = {
        s: round(float(interactions.loc[interactions["split"] == s, "label"].mean()), 4)
        for s in SPLITS if counts[s]
    }
    manifest = {
        "format": FORMAT,
        "name": name,
        "description": description,
        "item_noun": item_noun,
        **({"sequence_len": int(sequence_len)} if sequence_len else {}),
        "protocol": protocol,
        "files": {p: sha256_file(target / p) for p in ("interactions.csv.gz", "items.csv")},
        "counts": counts,
    }
    write_json(target / "manifest.json", manifest)
    return target


def write_json(path: Path, payload: Any) -> None:
    check_strict_json(payload, path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


class atomic_path:
    """Context manager yielding a temp path beside ``path``, renamed onto it on success."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __enter__(self) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                # mkstemp creates the file 0600: give it the mode a plain open() would have.
                os.chmod(self.tmp, 0o666 & ~umask())
                os.replace(self.tmp, self.path)
            except OSError as error:
                _unlink_quietly(self.tmp)
                raise write_error(self.path, error) from error
            return
        _unlink_quietly(self.tmp)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:  # a full disk names the file
            raise write_error(self.path, exc) from exc


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
