"""A prepared dataset described as in the paper's Table I, plus positive rate and warm/cold share."""
from __future__ import annotations

from typing import Any

from collm_bench.data.format import PreparedDataset
from collm_bench.data.subsets import warm_mask

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


def summarize(dataset: PreparedDataset) -> dict[str, Any]:
    frame = dataset.interactions
    split = frame["split"]
    train, test = frame[split == "train"], frame[split == "test"]
    warm = warm_mask(test["user"].to_numpy(), test["item"].to_numpy(),
                     train["user"].to_numpy(), train["item"].to_numpy())
    return {
        "dataset": dataset.name,
        "#train": f"{int((split == 'train').sum()):,}",
        "#valid": f"{int((split == 'valid').sum()):,}",
        "#test": f"{len(test):,}",
        "#user": f"{frame['user'].nunique():,}",
        "#item": f"{frame['item'].nunique():,}",
        "positive rate": f"{frame['label'].mean():.4f}",
        "test warm": f"{warm.mean():.1%}" if len(test) else "-",
        "test cold": f"{1 - warm.mean():.1%}" if len(test) else "-",
    }
