import pytest

from collm_bench.stages import StageCache, code_identity


def test_stage_computed_once_then_reused(tmp_path):
    cache = StageCache(tmp_path)
    calls = []

    def compute(path):
        calls.append(path)
        (path / "out.txt").write_text("x")
        return {"loss": 0.5}

    first = cache.run("train", {"a": 1}, compute)
    second = cache.run("train", {"a": 1}, compute)
    assert len(calls) == 1 and not first.cached and second.cached
    assert second.meta["loss"] == 0.5 and (second.path / "out.txt").read_text() == "x"
    third = cache.run("train", {"a": 2}, compute)
    assert len(calls) == 2 and third.key != first.key


def test_interrupted_stage_leaves_nothing_that_looks_complete(tmp_path):
    cache = StageCache(tmp_path)

    def crash(path):
        (path / "half.bin").write_bytes(b"...")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.run("train", {"a": 1}, crash)
    assert cache.lookup("train", cache.key("train", {"a": 1})) is None
    assert list((tmp_path / "train").iterdir()) == []


def test_partials_of_dead_processes_are_removed(tmp_path):
    cache = StageCache(tmp_path)
    key = cache.key("s", {})
    dead = tmp_path / "s" / f".{key}.partial-999999999"
    dead.mkdir(parents=True)
    cache.run("s", {}, lambda p: {})
    assert not dead.exists()


def test_key_is_order_independent_and_code_identity_is_stable():
    assert StageCache.key("s", {"a": 1, "b": 2}) == StageCache.key("s", {"b": 2, "a": 1})
    assert code_identity("collm_bench.metrics") == code_identity("collm_bench.metrics")
    assert code_identity("collm_bench.llm") != code_identity("collm_bench.metrics")
