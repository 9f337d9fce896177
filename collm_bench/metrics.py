"""AUC, UAUC and NDCG as DESIGN.md defines them, overall and on the warm/cold subsets.

- ``auc``: ROC AUC over all rows.
- ``uauc``: per-user ROC AUC, unweighted mean over users with >= 2 rows and both labels.
- ``ndcg``: per-user NDCG over all of the user's rows ranked by score, gain = label,
  log2 discount, ties averaged (as scikit-learn's ``ndcg_score``), mean over the same users.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

SUBSETS = ("overall", "warm", "cold")
METRICS = ("auc", "uauc", "ndcg")


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


def per_user(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """UAUC and NDCG over users with at least 2 rows and both labels; counts scored/skipped."""
    users = np.asarray(users)
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(users, kind="mergesort")
    u, y, s = users[order], labels[order], scores[order]
    bounds = np.flatnonzero(np.r_[True, u[1:] != u[:-1], True])
    aucs, ndcgs = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        yy = y[a:b]
        pos = int(yy.sum())
        if b - a < 2 or pos == 0 or pos == b - a:
            continue
        aucs.append(auc(yy, s[a:b]))
        ndcgs.append(ndcg_one(yy, s[a:b]))
    n_users = len(bounds) - 1
    return {
        "uauc": float(np.mean(aucs)) if aucs else float("nan"),
        "ndcg": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        "users": n_users,
        "users_scored": len(aucs),
        "users_skipped": n_users - len(aucs),
    }


def evaluate(users, labels, scores, subsets=None) -> dict[str, dict[str, Any]]:
    """All metrics, overall and (when ``subsets`` of 'warm'/'cold' is given) per subset.

    Values that are undefined (a subset with one class, or empty) are ``None``.
    """
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
        entry["auc"] = _clean(auc(labels[mask], scores[mask])) if mask.any() else None
        entry.update(per_user(users[mask], labels[mask], scores[mask]))
        entry["uauc"], entry["ndcg"] = _clean(entry["uauc"]), _clean(entry["ndcg"])
        result[name] = entry
    return result


def _clean(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)
