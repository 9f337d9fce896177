"""The conformance kit's dataset and method checks: they pass on the built-ins and catch a
plugin that breaks the contract, naming what is wrong."""
from dataclasses import dataclass

import numpy as np
import pytest

from collm_bench import DatasetSpec, MethodSpec, hookimpl
from collm_bench.api.methods import MethodOutput
from collm_bench.api.registry import load_registry
from collm_bench.testing import check_dataset, check_method, tiny_frames

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_builtin_dataset_and_methods_pass(registry):
    check_dataset(registry, "synthetic", source="rows=3000,seed=1")
    record = check_method(registry, "mf", encoder_options={"max_epochs": "2", "dim": "8"})
    assert record["method"] == "mf"
    check_method(registry, "tallrec", backbone="tiny-llama", options=FAST)


@dataclass(frozen=True)
class CoinOptions:
    bias: float = 0.0


def _random_scores(context):  # unseeded: a second run differs
    return MethodOutput(scores=np.random.default_rng().random(len(context.eval_rows)), train_seconds=0.0,
                        inference_seconds=0.0)


def _short_scores(context):
    return MethodOutput(scores=np.zeros(len(context.eval_rows) - 1), train_seconds=0.0, inference_seconds=0.0)


def _restated_options(context):  # records options the plan could not foresee
    return MethodOutput(scores=np.zeros(len(context.eval_rows)), train_seconds=0.0, inference_seconds=0.0,
                        options={"bias": 1.0})


def _random_split(target, source):
    from collm_bench.data.format import write_prepared

    frame, items = tiny_frames(seed=int(np.random.default_rng().integers(1000)))
    write_prepared(target, frame, items, name="wobbly", protocol="test", item_noun="movie")


class Broken:
    @hookimpl
    def register_methods(self, register):
        register(MethodSpec("coin", _random_scores, "unseeded"))
        register(MethodSpec("short", _short_scores, "one score short"))
        register(MethodSpec("restating", _restated_options, "options not foreseeable", options=CoinOptions,
                            resolve_options=lambda options: options))

    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec("wobbly", _random_split, "different data each time"))


@pytest.fixture(scope="module")
def broken():
    return load_registry([("broken", Broken())], entry_points=False)


@pytest.mark.parametrize("method, match", [
    ("coin", "different scores: seed every random draw"),
    ("short", r"returned \d+ scores for \d+ rows"),
    ("restating", "resolve_options must return the options"),
])
def test_a_broken_method_is_named(broken, method, match):
    with pytest.raises((AssertionError, RuntimeError), match=match):
        check_method(broken, method)


def test_a_nondeterministic_dataset_is_named(broken):
    with pytest.raises(AssertionError, match="prepare must be deterministic"):
        check_dataset(broken, "wobbly")
