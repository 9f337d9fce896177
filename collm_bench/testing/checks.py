"""Conformance checks for dataset and method plugins (``check_encoder`` lives beside them).

Each check runs the component through the harness exactly as ``collm-bench`` would, on tiny
data in a temporary folder, and fails with an ``AssertionError`` that names the broken part
of the contract.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def check_dataset(registry: Any, name: str, *, source: str | None = None) -> None:
    """Assert that dataset ``name`` follows the ``DatasetSpec`` contract.

    Prepares it twice into fresh folders (``source`` is passed to ``prepare``, so a plugin
    that downloads can be checked on a small local file) and checks that the result
    validates, that every split has rows with both labels, that ``valid_small`` lies inside
    valid, and that preparing is deterministic (the same manifest digest twice).
    """
    from collm_bench.data.format import load_prepared
    from collm_bench.data.datasets import prepare_dataset

    digests = []
    for attempt in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            path = prepare_dataset(name, root=Path(tmp) / f"data{attempt}", source=source, registry=registry)
            data = load_prepared(path)  # raises DataError on anything malformed
            frame = data.interactions
            for split in ("train", "valid", "test"):
                labels = set(frame.loc[frame["split"] == split, "label"])
                assert labels == {0, 1}, f"split {split!r} must have rows of both labels, has {sorted(labels)}"
            if "valid_small" in frame:
                outside = frame["valid_small"].astype(bool) & (frame["split"] != "valid")
                assert not outside.any(), "valid_small marks rows outside the valid split"
            digests.append(data.sha256)
    assert digests[0] == digests[1], "preparing twice gave different data: prepare must be deterministic"


def check_method(registry: Any, name: str, *, options: Mapping[str, str] | None = None,
                 encoder: str | None = None, encoder_options: Mapping[str, str] | None = None,
                 backbone: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Assert that method ``name`` follows the ``MethodSpec`` contract; return its record.

    Runs it on the tiny dataset (pass small ``options`` so that it is quick; a method using a
    backbone runs on ``backbone``, e.g. ``tiny-llama``) and checks: one finite score per
    evaluated row; record metrics equal to those recomputed from the saved predictions (for
    every companion row too); a run id known before the run, when the method resolves its
    options (``collm-bench suite`` relies on it to skip finished runs); and the same scores
    from a second run with the same seed and an empty stage cache.
    """
    from collm_bench.records.store import metrics_match
    from collm_bench.records.predictions import metrics_from_predictions, read_predictions
    from collm_bench.runner import RunRequest, plan, run
    from collm_bench.testing import tiny_dataset

    entry = registry.components["method"].get(name)  # None: an encoder run alone (mf, din, ...)
    if entry is None:
        registry.get("encoder", name)  # an unknown name: a did-you-mean error
    foreseeable = entry is None or entry.spec.options is None or entry.spec.resolve_options is not None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny_dataset(root / "tiny")

        def request(attempt: int) -> RunRequest:
            return RunRequest(method=name, dataset=str(root / "tiny"), encoder=encoder, backbone=backbone,
                              seed=seed, options=dict(options or {}), encoder_options=dict(encoder_options or {}),
                              out=root / f"runs{attempt}", cache_dir=str(root / f"cache{attempt}"))

        planned = plan(request(0), registry=registry)
        result = run(request(0), registry=registry, progress=lambda message: None)
        record = result.record
        if foreseeable:
            assert record["run_id"] == planned.run_id, (
                "the run id differs from the planned one: resolve_options must return the options "
                "the run records (MethodOutput.options)")
        assert sorted(planned.companions) == sorted(path.name for path, _ in result.companions), (
            "the rows written beside the method's own differ from those it declares: MethodSpec.companions "
            "must return what MethodOutput.companions holds")
        for run_dir, rec in [(result.run_dir, record)] + list(result.companions):
            scores = read_predictions(run_dir)["score"].to_numpy(dtype=float)
            assert len(scores) == planned.evaluation["rows"], f"{rec['method']}: one score per evaluated row"
            assert np.isfinite(scores).all(), f"{rec['method']}: scores must be finite"
            assert metrics_match(rec["metrics"], metrics_from_predictions(run_dir)), (
                f"{rec['method']}: record metrics differ from its predictions")
        again = run(request(1), registry=registry, progress=lambda message: None)
        first = read_predictions(result.run_dir)["score"].to_numpy(dtype=float)
        second = read_predictions(again.run_dir)["score"].to_numpy(dtype=float)
        assert np.allclose(first, second, rtol=1e-5, atol=1e-6), (
            f"two runs with seed {seed} gave different scores: seed every random draw")
    return record
