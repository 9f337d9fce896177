"""The metrics, overall and on the warm/cold subsets; the set is extensible (``MetricSpec``,
registered through ``register_metrics``).

- ``auc``: ROC AUC over all rows.
- ``uauc``: per-user ROC AUC, unweighted mean over users with >= 2 rows and both labels.
- ``ndcg``: per-user NDCG over all of the user's rows ranked by score, gain = label,
  log2 discount, ties averaged (as scikit-learn's ``ndcg_score``), mean over the same users.
- ``gauc``: per-user AUC weighted by the user's number of rows, over the same users (the GAUC of
  FuxiCTR and BARS; RecBole's GAUC weighs by positives instead).
- ``logloss``: mean binary cross-entropy of ``sigmoid(score)``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from collm_bench.api.components import MetricSpec

SUBSETS = ("overall", "warm", "cold")


def _rank_average(scores: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    new_group = np.ones(len(scores), dtype=bool)
    new_group[1:] = sorted_scores[1:] != sorted_scores[:-1]
    group = np.cumsum(new_group) - 1
    first = np.flatnonzero(new_group)
    last = np.append(first[1:], len(scores)) - 1
    avg = (first + last) / 2.0 + 1.0
    ranks = np.empty(len(scores))
    ranks[order] = avg[group]
    return ranks


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney with tie correction); NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _rank_average(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _tie_averaged_dcg(gains: np.ndarray, scores: np.ndarray) -> float:
    """DCG of ``gains`` ranked by descending ``scores``; tied items share their discounts."""
    order = np.argsort(-scores, kind="mergesort")
    s, g = scores[order], gains[order]
    discounts = 1.0 / np.log2(np.arange(len(s)) + 2.0)
    new_group = np.ones(len(s), dtype=bool)
    new_group[1:] = s[1:] != s[:-1]
    group = np.cumsum(new_group) - 1
    group_gain = np.bincount(group, weights=g)
    group_size = np.bincount(group)
    group_discount = np.bincount(group, weights=discounts)
    return float((group_gain / group_size * group_discount).sum())


def ndcg_one(labels: np.ndarray, scores: np.ndarray) -> float:
    labels = np.asarray(labels, dtype=float)
    ideal = _tie_averaged_dcg(labels, labels)
    if ideal == 0:
        return 0.0
    return _tie_averaged_dcg(labels, np.asarray(scores, dtype=float)) / ideal


def log_loss(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean binary cross-entropy of ``sigmoid(score)`` (scores read as logits; computed from
    the logits, so that saturated probabilities stay finite)."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.logaddexp(0.0, -scores) * labels + np.logaddexp(0.0, scores) * (1 - labels)))


def builtin_metrics() -> list[MetricSpec]:
    """The built-in metrics (registered by the built-in ``metrics`` plugin)."""
    return [
        MetricSpec("auc", "AUC", auc, "ROC AUC over all rows (ties averaged)"),
        MetricSpec("uauc", "UAUC", auc, "per-user AUC, unweighted mean over users with both labels (CoLLM)",
                   per_user=True),
        MetricSpec("ndcg", "NDCG", ndcg_one, "per-user NDCG of all the user's rows, gain = label, log2 discount, "
                   "ties averaged, unweighted mean over users with both labels", per_user=True),
        MetricSpec("gauc", "GAUC", auc, "per-user AUC weighted by the user's rows, over users with both labels "
                   "(FuxiCTR / BARS; RecBole weighs by positives instead)", per_user=True, weight="rows"),
        MetricSpec("logloss", "LogLoss", log_loss, "mean BCE of sigmoid(score): meaningful only where scores are "
                   "calibrated logits (not for ICL's untuned Yes-No difference or ensembles)",
                   higher_is_better=False),
    ]


def registered_metrics(registry=None) -> list[MetricSpec]:
    """The metrics of ``registry`` (by default the loaded plugins; built-ins first), or the
    built-ins alone when it has none."""
    if registry is None:
        from collm_bench.api.registry import get_registry

        registry = get_registry()
    specs = [entry.spec for entry in registry.components["metric"].values()]
    return specs or builtin_metrics()


def per_user(users: np.ndarray, labels: np.ndarray, scores: np.ndarray,
             metrics: list[MetricSpec] | None = None) -> dict[str, Any]:
    """The per-user metrics over users with at least 2 rows and both labels; counts scored/skipped."""
    specs = [m for m in (metrics if metrics is not None else builtin_metrics()) if m.per_user]
    users = np.asarray(users)
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(users, kind="mergesort")
    u, y, s = users[order], labels[order], scores[order]
    bounds = np.flatnonzero(np.r_[True, u[1:] != u[:-1], True])
    values: dict[str, list[float]] = {m.name: [] for m in specs}
    sizes: list[int] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        yy = y[a:b]
        pos = int(yy.sum())
        if b - a < 2 or pos == 0 or pos == b - a:
            continue
        sizes.append(b - a)
        for m in specs:
            values[m.name].append(m.compute(yy, s[a:b]))
    n_users = len(bounds) - 1
    out: dict[str, Any] = {}
    for m in specs:
        weights = np.asarray(sizes, dtype=float) if m.weight == "rows" else np.ones(len(sizes))
        out[m.name] = float(np.average(values[m.name], weights=weights)) if sizes else float("nan")
    out.update({"users": n_users, "users_scored": len(sizes), "users_skipped": n_users - len(sizes)})
    return out


def evaluate(users, labels, scores, subsets=None, metrics: list[MetricSpec] | None = None) -> dict[str, dict[str, Any]]:
    """Every metric (``metrics``, by default the registered ones), overall and (when ``subsets``
    of 'warm'/'cold' is given) per subset.

    Values that are undefined (a subset with one class, or empty) are ``None``.
    """
    specs = metrics if metrics is not None else registered_metrics()
    users, labels, scores = np.asarray(users), np.asarray(labels), np.asarray(scores, dtype=float)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    parts = {"overall": np.ones(len(labels), dtype=bool)}
    if subsets is not None:
        subsets = np.asarray(subsets)
        parts["warm"] = subsets == "warm"
        parts["cold"] = subsets == "cold"
    result = {}
    for name, mask in parts.items():
        entry: dict[str, Any] = {"rows": int(mask.sum())}
        for m in specs:
            if not m.per_user:
                entry[m.name] = _clean(m.compute(labels[mask], scores[mask])) if mask.any() else None
        users_part = per_user(users[mask], labels[mask], scores[mask], specs)
        for m in specs:
            if m.per_user:
                users_part[m.name] = _clean(users_part[m.name])
        entry.update(users_part)
        result[name] = entry
    return result


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)
