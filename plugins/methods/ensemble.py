"""``ensemble``: the average of two or more existing runs' scores (paper Table III), read from
their saved ``predictions.csv``; no model is loaded or run.

The paper combines MF with TALLRec, and MF with CoLLM-MF, by "ensemble averaging" (its ref.
[57], Dietterich 2000): the mean of the members' predictions. Every method here scores a row
with a logit trained by BCE-with-logits, but logits of different models live on different
scales (an MF dot product against an LLM's "Yes" logit), so a plain mean lets the wider one
decide. ``normalize`` says what is averaged:

- ``sigmoid`` (default): the members' probabilities, sigmoid(logit). That is what a BCE-trained
  model predicts, so it is ensemble averaging of predictions in the paper's (and Dietterich's)
  sense, and it is pointwise: a row's ensemble score depends on that row alone, so it is the
  same whether the test split is sampled or whole, and it could be served as is.
- ``none``: the raw scores (logits).
- ``rank``: each member's scores replaced by their rank among the evaluated rows, scaled to
  (0, 1]: scale-free, but a row's score depends on the other rows evaluated.
- ``zscore``: each member's scores standardised over the evaluated rows: same caveat.

The members must have been evaluated on exactly the rows of this run: same dataset digest and
the same (user, item, label) rows in the same order. ``runs`` accepts run directories or run
ids under the output root (``--out``); the record states the members by run id, so the same
members give the same run id however they were named.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collm_bench import MethodSpec, UserError, hookimpl
from collm_bench.api.components import option
from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.records.predictions import predictions_sha256, verified_predictions
from collm_bench.records.store import read_record
from collm_bench.records.record import RunRecord, evaluated_rows

NORMALIZATIONS = ("sigmoid", "none", "rank", "zscore")


@dataclass(frozen=True)
class EnsembleOptions:
    """``runs``: two or more run directories or run ids (comma-separated on the command line)."""

    runs: tuple[str, ...] = option((), help="member run directories or run ids")
    normalize: str = option("sigmoid", choices=NORMALIZATIONS, help="scale each member's scores before averaging")

    def __post_init__(self) -> None:
        if len(self.runs) < 2:
            raise ValueError("needs two or more member runs: --set runs=RUN,RUN (run directories or run ids)")
        if len(set(self.runs)) != len(self.runs):
            raise ValueError(f"a member run is listed twice: {', '.join(self.runs)}")


def normalized(scores: np.ndarray, how: str) -> np.ndarray:
    """One member's scores on the common scale that is averaged (see the module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    if how == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * scores))  # = 1 / (1 + exp(-s)), without overflow
    if how == "rank":
        from scipy.stats import rankdata

        return rankdata(scores, method="average") / len(scores)
    if how == "zscore":
        std = scores.std()
        return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    return scores


def _find(ref: str, out: Path | None) -> Path:
    for candidate in (Path(ref).expanduser(), (out / ref) if out is not None else None):
        if candidate is not None and (candidate / "record.json").exists():
            return candidate
    where = f" or under {out}" if out is not None else ""
    raise UserError(f"ensemble: run {ref!r} not found (no record.json in {ref}{where})")


def _evaluated(evaluation: dict[str, Any] | None) -> str:
    """The rows a member scored, with the flag that scores the same ones."""
    ev = evaluation or {}
    sample = ev.get("sample") or {}
    if not ev.get("sampled"):
        flag = "--full-test"
    elif sample.get("unit") == "rows":
        flag = f"--sample-test {sample.get('requested_rows')}"
    else:   # the whole-user sample of records before 2026-12-07: no flag draws it now
        flag = "a sample no longer drawn: rerun the members"
    return f"{evaluated_rows(ev)}, {flag}"


def _check_rows(ref: str, record: RunRecord, frame, context: MethodContext, evaluation: str) -> None:
    """Refuse a member evaluated on other rows than this run, with one line saying how to match."""
    dataset = context.dataset
    member_sha = record.dataset_sha256
    if member_sha != dataset.sha256:
        raise UserError(f"ensemble: run {ref!r} was evaluated on dataset "
                        f"{record.dataset!r} ({str(member_sha)[:12]}), "
                        f"not on {dataset.name!r} ({dataset.sha256[:12]})")
    data, rows = context.data, context.eval_rows
    same = len(frame) == len(rows) and bool(
        (frame["user"].astype(str).to_numpy() == np.asarray(data.user_id[rows]).astype(str)).all()
        and (frame["item"].astype(str).to_numpy() == np.asarray(data.item_id[rows]).astype(str)).all()
        and (frame["label"].to_numpy() == np.asarray(data.label[rows])).all())
    if not same:
        raise UserError(f"ensemble: run {ref!r} scored other rows ({_evaluated(record.evaluation)}) "
                        f"than this ensemble ({evaluation}); run the ensemble on the members' rows")


def run(context: MethodContext) -> MethodOutput:
    options: EnsembleOptions = context.options
    started = time.perf_counter()
    ours = {"rows": len(context.eval_rows), "total_rows": int((context.data.split == "test").sum())}
    ours["sampled"] = ours["rows"] < ours["total_rows"]
    evaluation = f"{ours['rows']} of {ours['total_rows']} test rows" if ours["sampled"] else \
        f"all {ours['rows']} test rows"
    members, parts = [], []
    for ref in options.runs:
        path = _find(ref, context.out)
        record = read_record(path)
        frame = verified_predictions(path, record)  # a changed member file is refused, not averaged
        _check_rows(ref, record, frame, context, evaluation)
        parts.append(normalized(frame["score"].to_numpy(), options.normalize))
        members.append({
            "run_id": record.run_id, "label": record.row_label,
            "method": record.method, "encoder": record.encoder, "backbone": record.backbone,
            "meaningless": record.meaningless,
            "predictions_sha256": predictions_sha256(path),
            "train_seconds": float(record.timing("train_seconds") or 0.0),
            "inference_seconds": float(record.timing("inference_seconds") or 0.0),
        })
    ids = [m["run_id"] for m in members]
    if len(set(ids)) != len(ids):
        raise UserError(f"ensemble: the same run is named twice ({', '.join(options.runs)})")
    scores = np.mean(parts, axis=0)
    seconds = time.perf_counter() - started
    return MethodOutput(
        scores=scores,
        # an ensemble costs what its members cost; combining them takes milliseconds
        train_seconds=sum(m["train_seconds"] for m in members),
        inference_seconds=sum(m["inference_seconds"] for m in members),
        stages={"combine": {"seconds": round(seconds, 3), "cached": False}},
        details={"members": members, "normalize": options.normalize},
        options={"runs": ids, "normalize": options.normalize},
        meaningless=any(m["meaningless"] for m in members),
        # the backbones its members name (MF names none): a board's Backbone column for the row
        backbone="+".join(dict.fromkeys(m["backbone"] for m in members if m["backbone"])) or None,
        label="+".join(m["label"] for m in members),
    )


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="ensemble", run=run, options=EnsembleOptions,
        description="Average of existing runs' saved scores (sigmoid by default; Table III), no model rerun",
    ))
