"""What comes from outside, round three (issue 31, item 3): files named by records, the launcher's
environment, plugin switches, metric names, leases, suite files, --jobs, --output and signals
while plugins load. Each rule refuses or skips in one line naming the thing."""
import json
import os
from pathlib import Path

import pytest

from collm_bench import UserError
from collm_bench.testing import tiny_dataset

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "runs" / "ml-100k"


def _committed_record(folder: Path) -> Path:
    source = next(COMMITTED.glob("*__mf__seed1__*/record.json"))
    run_dir = folder / source.parent.name
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(source.read_text())
    return run_dir


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_record_json_that_is_no_regular_file_is_named_and_skipped(tmp_path, cli, kind):
    _committed_record(tmp_path / "runs")
    odd = tmp_path / "runs" / "odd"
    odd.mkdir()
    os.mkfifo(odd / "record.json") if kind == "fifo" else (odd / "record.json").mkdir()
    code, out, err = cli(["leaderboard", "--runs", str(tmp_path / "runs")])   # a FIFO hung here
    assert code == 0 and "mf" in out
    assert f"{odd / 'record.json'}: skipped (record.json is {'a FIFO' if kind == 'fifo' else 'a directory'}" in err


def test_predictions_that_are_no_regular_file_are_refused_by_score(tmp_path, cli):
    run_dir = _committed_record(tmp_path / "runs")
    os.mkfifo(run_dir / "predictions.csv")
    code, _, err = cli(["score", str(run_dir)])
    assert code == 2 and "predictions.csv is a FIFO, not a regular file" in err


@pytest.mark.parametrize("env, message", [
    ({"RANK": "1"}, "$RANK=1 with $WORLD_SIZE=1: a rank must be from 0 to WORLD_SIZE - 1"),
    ({"WORLD_SIZE": "abc"}, "$WORLD_SIZE is 'abc', not an integer"),
    ({"LOCAL_RANK": "-2"}, "$LOCAL_RANK=-2 is negative"),
])
def test_a_launcher_environment_that_makes_no_sense_is_one_line(tmp_path, cli, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tiny_dataset(tmp_path / "tiny")
    code, _, err = cli(["run", "--method", "mf", "--dataset", str(tmp_path / "tiny"), "--out", str(tmp_path / "r")])
    assert code == 2 and message in err and not list((tmp_path / "r").glob("*/record.json"))


def test_a_plugin_switch_naming_no_plugin_is_reported(monkeypatch):
    from collm_bench.api.registry import load_registry

    monkeypatch.setenv("COLLM_BENCH_LOAD_PLUGINS", "bultins,mf")
    registry = load_registry()
    assert "mf" in registry.plugins
    (failure,) = [f for f in registry.failures if f.plugin == "bultins"]
    assert "named by $COLLM_BENCH_LOAD_PLUGINS, but no installed plugin has this name" in failure.error


def test_a_metric_named_like_a_count_is_refused():
    from collm_bench.api.components import MetricSpec
    from collm_bench.api.registry import hookimpl, load_registry

    class Plugin:
        @staticmethod
        @hookimpl
        def register_metrics(register):
            register(MetricSpec(name="rows", title="Rows", compute=lambda labels, scores: 0.0, description="x"))

    registry = load_registry([("counts", Plugin())], entry_points=False)
    (failure,) = registry.failures
    assert "metric name 'rows' is taken by the count of the same name in every record" in failure.error


@pytest.mark.parametrize("pid", [-1, 0, "1", None])
def test_a_lease_with_an_impossible_pid_counts_for_nothing(tmp_path, pid):
    from collm_bench.cache.stages import LEASES, live_leases

    (tmp_path / LEASES).mkdir()
    (tmp_path / LEASES / "x.json").write_text(json.dumps({"pid": pid, "stages": [["s", "k"]]}))
    assert live_leases(tmp_path) == []


def test_dependencies_that_are_not_strings_make_a_malformed_record():
    from collm_bench.records.record import record_problem

    record = json.loads(next(COMMITTED.glob("*__mf__seed1__*/record.json")).read_text())
    record["dependencies"]["definitions"] = {"abc": ["a", "list"]}
    assert record_problem(record) == "'dependencies.definitions' is not an object of strings"


@pytest.mark.parametrize("text, message", [
    ('[suite]\nout = ["a", "b"]\n[[entry]]\nmethod = "mf"\n', "[suite] out must be a folder name (a string)"),
    ('[suite]\ndescription = 3\n[[entry]]\nmethod = "mf"\n', "[suite] description must be a string"),
])
def test_suite_values_of_the_wrong_type_are_refused(tmp_path, text, message):
    from collm_bench.suites.file import read_suite

    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(UserError) as err:
        read_suite(tmp_path / "s.toml")
    assert message in str(err.value)


def test_a_suite_file_that_is_not_utf8_is_one_line(tmp_path):
    from collm_bench.suites.file import read_suite

    (tmp_path / "s.toml").write_bytes(b'[suite]\ndescription = "caf\xe9"\n[[entry]]\nmethod = "mf"\n')
    with pytest.raises(UserError, match="not UTF-8 text"):
        read_suite(tmp_path / "s.toml")


def test_forty_thousand_entries_are_refused_by_size(tmp_path, cli):
    text = "".join(f'[[entry]]\nname = "e{i}"\nmethod = "mf"\n' for i in range(40_000))
    (tmp_path / "s.toml").write_text(text)
    code, _, err = cli(["suite", str(tmp_path / "s.toml"), "--dry-run"])
    assert code == 2 and "its matrix has 40,000 runs, over the limit of 10,000" in err


def test_more_jobs_than_cores_run_as_many_as_cores(monkeypatch):
    from collm_bench.suites import jobs

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(jobs, "cpu_count", lambda: 2)
    said = []
    slots = jobs.Slots.for_machine(64, said.append)
    assert slots.jobs == 2 and slots.threads == 1 and said == ["--jobs 64, but 2 core(s) here: 2 jobs, one thread each"]


def test_an_unwritable_suite_output_is_refused_before_any_run(tmp_path, cli):
    tiny_dataset(tmp_path / "tiny")
    (tmp_path / "s.toml").write_text('[suite]\ndatasets = ["tiny"]\n[[entry]]\nmethod = "mf"\n')
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = cli(["suite", str(tmp_path / "s.toml"), "--output", str(blocker / "sub" / "table.md")])
    assert code == 2 and "folder of --output" in err
    assert not list((tmp_path / "runs").glob("*/record.json"))          # nothing ran


def test_a_signal_while_plugins_load_is_one_line(monkeypatch, capsys):
    from collm_bench import cli

    def interrupted():
        raise cli.Terminated()

    monkeypatch.setattr(cli, "_add_plugin_commands", interrupted)
    with pytest.raises(SystemExit) as stop:
        cli.main(["plugins"])
    err = capsys.readouterr().err
    assert stop.value.code == 143 and err.count("\n") == 1 and err.startswith("stopped by SIGTERM")


@pytest.mark.parametrize("edit, problem", [
    (lambda r: r.update(seed=-7), "'seed' is -7, outside [0, 2**32)"),
    (lambda r: r["evaluation"].update(rows=5, total_rows=3), "'evaluation.rows' 5 is above 'evaluation.total_rows' 3"),
    (lambda r: r["evaluation"].update(rows=-5), "'evaluation' counts must be non-negative integers"),
    (lambda r: r["evaluation"].update(sampled="yes"), "'evaluation.sampled' is not true or false"),
    (lambda r: r["metrics"]["overall"].update(users=2.5), "'metrics.overall.users' is 2.5, not a whole count"),
])
def test_record_numbers_outside_their_domain_make_a_malformed_record(edit, problem):
    from collm_bench.records.record import record_problem

    record = json.loads(next(COMMITTED.glob("*__mf__seed1__*/record.json")).read_text())
    edit(record)
    assert (record_problem(record) or "").startswith(problem)


def test_an_option_set_twice_is_refused(tmp_path, cli):
    code, _, err = cli(["run", "--method", "mf", "--set", "dim=8", "--set", "dim=16"])
    assert code == 2 and "dim is set twice ('8' and '16'): keep one" in err


def test_a_stage_json_that_is_no_regular_file_is_named_and_computed_again(tmp_path):
    from collm_bench.cache.stages import STAGE_FILE, StageCache

    cache = StageCache(tmp_path)
    first = cache.run("s", {"a": 1}, lambda path: (path / "x").write_text("1") and {})
    (first.path / STAGE_FILE).unlink()
    os.mkfifo(first.path / STAGE_FILE)       # every lookup hung on it
    said = []
    assert cache.lookup("s", first.key, said.append) is None
    assert said and "stage.json is a FIFO, not a regular file" in said[0]


def test_cache_list_survives_a_damaged_training_state(tmp_path, cli):
    from collm_bench.cache.stages import StageCache

    StageCache(tmp_path)
    resume = tmp_path / "llm-step1" / ".abc.resume"
    resume.mkdir(parents=True)
    (resume / "checkpoint.json").write_text(json.dumps({"state": {"step": 3, "result": [1]}}))
    code, out, err = cli(["cache", "list", "--cache-dir", str(tmp_path)])
    assert code == 0, err


@pytest.mark.parametrize("run_id", ["../outside", "/etc/x", "a/b", ".."])
def test_a_record_whose_run_id_is_a_path_is_malformed(run_id):
    from collm_bench.records.record import record_problem

    record = json.loads(next(COMMITTED.glob("*__mf__seed1__*/record.json")).read_text())
    record["run_id"] = run_id     # the HTML page writes configs/<run id>.json
    assert "cannot name a folder" in (record_problem(record) or "")


@pytest.mark.parametrize("args, message", [
    (["--table", "9"], "--table must be one of 2..7"),
    (["--figure", "7"], "figure"),
    (["--format", "xml"], "--format must be md, csv, json or html"),
])
def test_leaderboard_options_out_of_range_are_one_line(tmp_path, cli, args, message):
    _committed_record(tmp_path / "runs")
    code, _, err = cli(["leaderboard", "--runs", str(tmp_path / "runs"), *args])
    assert code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("device, count", [("cuda:1", 1), ("cuda:7", 2)])
def test_a_cuda_index_beyond_the_devices_is_refused_before_any_work(tmp_path, cli, monkeypatch, device, count):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    tiny_dataset(tmp_path / "tiny")
    code, _, err = cli(["run", "--method", "tallrec", "--backbone", "tiny-llama", "--dataset", str(tmp_path / "tiny"),
                        "--out", str(tmp_path / "r"), "--backbone-set", f"device={device}"])
    assert code == 2 and f"backbone option device={device}: torch sees {count} CUDA device(s) here" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


@pytest.mark.parametrize("device, count", [("cuda:0", 1), ("cuda:1", 2), ("cuda", 1), ("cpu", 0), ("auto", 0)])
def test_a_cuda_index_among_the_devices_passes(device, count):
    import types

    from collm_bench.llm._checks import check_cuda_index

    check_cuda_index(device, types.SimpleNamespace(is_available=lambda: count > 0, device_count=lambda: count))
