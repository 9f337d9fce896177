from pathlib import Path

import pytest

from collm_bench.cache.stages import StageCache, code_identity


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
    assert code_identity("collm_bench.records.metrics") == code_identity("collm_bench.records.metrics")
    assert code_identity("collm_bench.llm.scorer") != code_identity("collm_bench.records.metrics")


def test_a_resumed_stage_takes_the_time_of_every_process(tmp_path):
    """A stage killed after a checkpoint and finished by a second process reports both
    processes' time, not the last one's alone."""
    import json
    import os
    import time

    cache = StageCache(tmp_path)
    now = time.time()
    # what a process killed outright leaves: its note (started 100 s ago), a checkpoint of 40 s ago
    resume = tmp_path / "train" / f".{cache.key('train', {'a': 1})}.resume"
    resume.mkdir(parents=True)
    (resume / "process-1-0.json").write_text(json.dumps({"started": now - 100, "ended": None}))
    (resume / "state.json").write_text("{}")
    os.utime(resume / "state.json", (now - 40, now - 40))
    result = cache.run("train", {"a": 1}, lambda path: {})
    assert 60 <= result.meta["seconds"] < 70          # 60 s of the first process, a moment of the second
    assert not resume.exists()                         # the stage is complete: its resume state is gone


def test_an_interrupted_stage_notes_its_end_only_when_it_left_something_to_resume(tmp_path):
    from collm_bench.cache.stages import checkpoint_dir

    cache = StageCache(tmp_path)

    def checkpointed_then_stopped(path):
        (checkpoint_dir() / "state.json").write_text("{}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.run("train", {"a": 1}, checkpointed_then_stopped)
    (note,) = (tmp_path / "train").glob(".*.resume/process-*.json")
    assert '"ended": null' not in note.read_text()
    with pytest.raises(KeyboardInterrupt):
        cache.run("train", {"a": 2}, lambda path: (_ for _ in ()).throw(KeyboardInterrupt))
    assert len(list((tmp_path / "train").glob(".*.resume"))) == 1   # nothing saved: nothing to resume
    assert cache.run("train", {"a": 3}, lambda path: {}).meta["seconds"] < 5


def _compute_slowly(root, marker_dir, started):
    """A process that computes stage "s": it notes that it computed, then takes its time."""
    import os
    import time

    def compute(path):
        (Path(marker_dir) / f"computed-{os.getpid()}").write_text("")
        time.sleep(1.0)
        (path / "out.txt").write_text("x")
        return {}

    started.set()
    StageCache(root).run("s", {"a": 1}, compute)


def test_two_processes_needing_one_stage_compute_it_once(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    markers = tmp_path / "markers"
    markers.mkdir()
    first_started, second_started = ctx.Event(), ctx.Event()
    first = ctx.Process(target=_compute_slowly, args=(tmp_path / "cache", markers, first_started))
    first.start()
    first_started.wait(10)
    second = ctx.Process(target=_compute_slowly, args=(tmp_path / "cache", markers, second_started))
    second.start()
    first.join(30)
    second.join(30)
    assert first.exitcode == 0 and second.exitcode == 0
    assert len(list(markers.iterdir())) == 1          # the second waited, then reused the first's
    assert StageCache(tmp_path / "cache").lookup("s", StageCache.key("s", {"a": 1})) is not None


def test_a_killed_process_leaves_no_lock_behind(tmp_path):
    import multiprocessing
    import os
    import signal

    ctx = multiprocessing.get_context("fork")
    markers = tmp_path / "markers"
    markers.mkdir()
    started = ctx.Event()
    victim = ctx.Process(target=_compute_slowly, args=(tmp_path / "cache", markers, started))
    victim.start()
    started.wait(10)
    while not list(markers.iterdir()):   # inside compute, holding the lock
        pass
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    calls = []
    result = StageCache(tmp_path / "cache").run("s", {"a": 1}, lambda path: calls.append(1) or {})
    assert calls == [1] and not result.cached


def test_a_stage_that_names_no_local_weights_keeps_its_key():
    import hashlib
    import json

    from collm_bench.cache.stages import StageCache

    inputs = {"dataset": "abc", "seed": 0, "backbone": "minilm", "backbone_options": {"path": None}}
    before = hashlib.sha256(json.dumps({"stage": "llm-step1", "inputs": inputs}, sort_keys=True,
                                       default=str).encode()).hexdigest()[:20]
    assert StageCache.key("llm-step1", inputs) == before


def test_local_weights_are_keyed_by_what_is_there(tmp_path, monkeypatch):
    import os

    from collm_bench.cache import _local_weights
    from collm_bench.cache.stages import StageCache

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "weights.bin").write_bytes(b"\0" * 64)
    monkeypatch.setattr(_local_weights, "SMALL", 32)   # weights.bin counts as large
    inputs = {"backbone": "hf-local", "backbone_options": {"path": str(folder)}}
    keys = [StageCache.key("s", inputs)]
    assert StageCache.key("s", inputs) == keys[0]   # nothing changed
    (folder / "config.json").write_text('{"hidden_size": 9}')   # same size, other content
    keys.append(StageCache.key("s", inputs))
    stat = (folder / "weights.bin").stat()
    os.utime(folder / "weights.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))   # rewritten in place
    keys.append(StageCache.key("s", inputs))
    (folder / "tokenizer.json").write_text("{}")
    keys.append(StageCache.key("s", inputs))
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("x")   # hidden bookkeeping is not weights
    keys.append(StageCache.key("s", inputs))
    assert len(set(keys)) == 4 and keys[-1] == keys[-2]
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 8)
    first = StageCache.key("s", {"backbone": f"hf:{gguf}"})
    gguf.write_bytes(b"GGUF" + b"\1" * 8)
    assert StageCache.key("s", {"backbone": f"hf:{gguf}"}) != first


def test_local_weights_named_from_home_are_fingerprinted_too(tmp_path, monkeypatch):
    from collm_bench.cache.stages import StageCache

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "w.gguf").write_bytes(b"GGUF1")
    first = StageCache.key("s", {"backbone": "hf:~/w.gguf"})
    (tmp_path / "w.gguf").write_bytes(b"GGUF2")
    assert StageCache.key("s", {"backbone": "hf:~/w.gguf"}) != first
