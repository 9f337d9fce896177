"""collm-bench cache list / prune: what each folder of the stage cache is, and what a prune deletes."""
import json
import os
import re
import subprocess
import sys

import pytest


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "stages"
    step1 = root / "llm-step1"
    for key in ("aaaa", "bbbb"):   # two complete stages
        (step1 / key).mkdir(parents=True)
        (step1 / key / "stage.json").write_text("{}")
        (step1 / key / "weights.bin").write_bytes(b"x" * 1000)
    (step1 / ".aaaa.resume").mkdir()                       # spent: its stage is complete
    (step1 / ".cccc.resume").mkdir()                       # the checkpoint of an unfinished stage
    (step1 / ".cccc.resume" / "state.json").write_text("{}")
    (step1 / f".dddd.partial-{_dead_pid()}").mkdir()       # left by a killed run
    (step1 / f".eeee.partial-{os.getpid()}").mkdir()       # being written by a live process
    (step1 / ".ffff.damaged-1").mkdir()
    runs = tmp_path / "runs" / "r1"
    runs.mkdir(parents=True)
    (runs / "record.json").write_text(json.dumps({"timings": {"stages": {
        "llm-step1": {"key": "aaaa"}, "inference": {"seconds": 0.1}}}}))
    return root, tmp_path / "runs"


def _names(root):
    return sorted(p.name for p in (root / "llm-step1").iterdir())


def test_list_counts_each_kind(cli, cache):
    root, _ = cache
    code, out, _ = cli(["cache", "list", "--cache-dir", str(root)])
    assert code == 0
    rows = {tuple(re.split(r"\s{2,}", line.strip())[:3]) for line in out.splitlines()[3:]}
    assert rows == {("llm-step1", "stage", "2"), ("llm-step1", "checkpoint", "1"), ("llm-step1", "leftover", "3"),
                    ("llm-step1", "in progress", "1")}


def test_prune_alone_removes_only_leftovers(cli, cache):
    root, _ = cache
    code, out, _ = cli(["cache", "prune", "--cache-dir", str(root)])
    assert code == 0 and "deleted 3 entries" in out
    assert _names(root) == [".cccc.resume", f".eeee.partial-{os.getpid()}", "aaaa", "bbbb"]


def test_prune_keeps_the_stages_records_name(cli, cache):
    root, runs = cache
    os.rmdir(root / "llm-step1" / f".eeee.partial-{os.getpid()}")   # no run is computing now
    code, out, _ = cli(["cache", "prune", "--keep-for", str(runs), "--dry-run", "--cache-dir", str(root)])
    assert code == 0 and "would delete 4 entries" in out and len(_names(root)) == 6
    code, out, _ = cli(["cache", "prune", "--keep-for", str(runs), "--checkpoints", "--cache-dir", str(root)])
    assert code == 0 and "deleted 5 entries" in out
    assert _names(root) == ["aaaa"]


def test_prune_refuses_a_folder_without_records(cli, cache, tmp_path):
    root, _ = cache
    code, _, err = cli(["cache", "prune", "--keep-for", str(tmp_path / "nothing"), "--cache-dir", str(root)])
    assert code == 2 and "no record.json below it" in err and len(_names(root)) == 7


def test_prune_keeps_what_is_not_a_stage_and_what_a_live_run_trains_into(cli, cache):
    root, runs = cache
    (root / "llm-step1" / "notes").mkdir()                          # not ours: never deleted
    (root / "llm-step1" / ".eeee.resume").mkdir()                   # the live writer's checkpoint
    code, out, _ = cli(["cache", "prune", "--checkpoints", "--cache-dir", str(root)])
    assert code == 0 and ".eeee.resume" in _names(root) and "notes" in _names(root)


def test_prune_for_records_waits_for_live_runs(cli, cache):
    root, runs = cache   # a live run's finished stages are named by no record yet
    code, _, err = cli(["cache", "prune", "--keep-for", str(runs), "--cache-dir", str(root)])
    assert code == 2 and "a run is using the cache now" in err


def test_list_says_how_far_each_unfinished_training_got(cli, cache):
    root, _ = cache
    state = {"step": 236, "result": {"best_step": 200, "best_valid_auc": 0.58138, "steps_run": 236}}
    (root / "llm-step1" / ".cccc.resume" / "checkpoint.json").write_text(json.dumps({"state": state}))
    code, out, _ = cli(["cache", "list", "--cache-dir", str(root)])
    assert code == 0
    lines = out.split("unfinished training (a rerun resumes there):\n")[1].splitlines()
    assert re.fullmatch(r"  llm-step1 cccc: step 236, best validation AUC 0\.5814 at step 200, saved \S+ \S+", lines[0])
    assert len(lines) == 1   # a spent checkpoint (aaaa) or one without training state says nothing


def test_prune_never_removes_a_stage_a_live_run_holds_between_stages(cli, tmp_path):
    """A run frozen between two stages writes no .partial folder; its lease still keeps prune
    from deleting the stage it just used (or, with --keep-for, anything it may use next). Once
    the run is gone, its lease counts for nothing."""
    root = tmp_path / "stages"
    runs = tmp_path / "runs" / "r1"
    runs.mkdir(parents=True)
    (runs / "record.json").write_text(json.dumps({"timings": {"stages": {}}}))   # names no stage
    frozen = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from collm_bench.cache.stages import StageCache\n"
        f"cache = StageCache({str(root)!r})\n"
        "cache.run('encoder-mf', {'a': 1}, lambda path: (path / 'w.bin').write_bytes(b'x') and {})\n"
        "print('between stages', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert frozen.stdout.readline().strip() == "between stages"
        (stage,) = [p for p in (root / "encoder-mf").iterdir() if not p.name.startswith(".")]
        code, _, err = cli(["cache", "prune", "--keep-for", str(tmp_path / "runs"), "--cache-dir", str(root)])
        assert code == 2 and f"a run is using the cache now (pid {frozen.pid}" in err and stage.exists()
        code, out, _ = cli(["cache", "prune", "--checkpoints", "--cache-dir", str(root)])
        assert code == 0 and stage.exists()
    finally:
        frozen.kill()
        frozen.wait()
    code, out, _ = cli(["cache", "prune", "--keep-for", str(tmp_path / "runs"), "--cache-dir", str(root)])
    assert code == 0 and "deleted 1 entries" in out and not stage.exists()
