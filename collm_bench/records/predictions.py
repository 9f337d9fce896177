"""A run's predictions: ``predictions.csv`` written and read back, and the metrics and intervals
computed from it.

Part of every record's code identity (``collm_bench.cache.identity``): how the scores are written,
parsed and scored are numbers of a result; ``collm_bench.records.store`` only moves them around.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from collm_bench.data._checks import check_regular_file
from collm_bench.data.format import atomic_path, sha256_file
from collm_bench.errors import UserError
from collm_bench.records.metrics import evaluate

PREDICTION_COLUMNS = ("user", "item", "label", "score", "subset")


def write_predictions(run_dir: Path, user, item, label, score, subset) -> Path:
    import pandas as pd

    path = Path(run_dir) / "predictions.csv"
    frame = pd.DataFrame({"user": user, "item": item, "label": label, "score": score, "subset": subset})
    with atomic_path(path) as tmp:
        # repr-exact floats: recomputed metrics must equal the recorded ones.
        frame.to_csv(tmp, index=False, float_format="%.9g")
    return path


def read_predictions(run_dir: Path):
    """A run's ``predictions.csv``, checked for its columns, binary labels and finite scores."""
    import pandas as pd

    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise UserError(f"{path}: missing file")
    check_regular_file(path, "predictions.csv")
    try:
        # ids as written: "01" is not 1, "NA" is a name (the dataset's ids, kept as text)
        frame = pd.read_csv(path, dtype={"user": str, "item": str}, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: cannot parse as CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(score).all():
        raise UserError(f"{path}: non-numeric or non-finite score on data row {int(np.argmin(np.isfinite(score))) + 1}")
    if not frame["label"].isin([0, 1]).all():
        raise UserError(f"{path}: label must be 0 or 1 (data row {int((~frame['label'].isin([0, 1])).idxmax()) + 1})")
    return frame


def metrics_from_predictions(run_dir: Path) -> dict[str, Any]:
    return metrics_of(read_predictions(run_dir))


def metrics_of(frame) -> dict[str, Any]:
    return evaluate(frame["user"].to_numpy(), frame["label"].to_numpy(),
                    frame["score"].to_numpy(), frame["subset"].to_numpy())


def intervals_of(frame) -> dict[str, Any]:
    """95% intervals of AUC and UAUC by a seeded bootstrap over users (``collm_bench.records.bootstrap``)."""
    from collm_bench.records.bootstrap import intervals

    return intervals(frame["user"].to_numpy(), frame["label"].to_numpy(), frame["score"].to_numpy())


def predictions_sha256(run_dir: Path) -> str:
    return sha256_file(Path(run_dir) / "predictions.csv")


def check_predictions_checksum(run_dir: Path, record) -> bool:
    """True when the record's ``predictions_sha256`` matches ``predictions.csv``; False when the
    record carries none (written by an older collm-bench); a one-line ``UserError`` otherwise."""
    expected = record.predictions_sha256
    if expected is None:
        return False
    path = Path(run_dir) / "predictions.csv"
    if not path.exists():
        raise UserError(f"{path}: missing file (record.json states its checksum)")
    check_regular_file(path, "predictions.csv")
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(f"{path}: sha256 {actual[:12]}... differs from {str(expected)[:12]}... in record.json: "
                        "the predictions changed after the run; rerun it")
    return True


def verified_predictions(run_dir: Path, record=None):
    """A run's predictions, refused in one line unless they are the ones its record was made from.

    The record's ``predictions_sha256`` must match the file. A record written before records
    carried that checksum is checked the only way left: its metrics must equal those
    recomputed from the file.
    """
    from collm_bench.records.store import metrics_match, read_record

    record = read_record(run_dir) if record is None else record
    checked = check_predictions_checksum(run_dir, record)
    frame = read_predictions(run_dir)
    if not checked and not metrics_match(metrics_of(frame), record.metrics):
        raise UserError(f"{Path(run_dir) / 'predictions.csv'}: metrics recomputed from it differ from "
                        "record.json (a record without a predictions checksum); rerun it")
    return frame
