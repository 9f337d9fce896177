"""Fault injection: what the harness guarantees when runs are killed, race, read damaged files,
get bad options or cannot write. Each test breaks something on purpose and checks that the
result is either right or refused in one line naming the thing, never silently wrong."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from collm_bench import UserError
from collm_bench.api.registry import load_registry
from collm_bench.records.store import read_record
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_dataset

FAST_LLM = ["--set", "max_steps=4", "--set", "eval_every=2", "--set", "batch_size=8", "--set", "history_titles=3",
            "--set", "valid_rows=12", "--set", "warmup_steps=1", "--set", "step2_max_steps=4",
            "--encoder-set", "max_epochs=2", "--encoder-set", "dim=8"]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    tiny_dataset(path)
    return path


def _cli(args, cwd, **popen):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "collm_bench", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _collm_args(dataset_dir, out, cache):
    return ["--verbose", "run", "--method", "collm", "--backbone", "tiny-llama", "--dataset", str(dataset_dir),
            "--out", str(out), "--cache-dir", str(cache), *FAST_LLM]


def _predictions(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/predictions.csv"))}


@pytest.fixture(scope="module")
def reference(dataset_dir, tmp_path_factory):
    """An uninterrupted CoLLM run (three rows) in a process of its own."""
    root = tmp_path_factory.mktemp("reference")
    proc = _cli(_collm_args(dataset_dir, root / "runs", root / "cache"), root)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return _predictions(root / "runs")


# --- a run killed anywhere resumes to the same result --------------------------------------

@pytest.mark.parametrize("marker", [
    "stage encoder-mf: computing",   # while the encoder trains
    "step 3/4",                      # inside step 1's training loop
    "stage llm-step2: computing",    # between step 1 and step 2
    "wrote ",                        # between two records
])
def test_a_run_killed_at_any_stage_resumes_to_identical_predictions(marker, reference, dataset_dir, tmp_path):
    args = _collm_args(dataset_dir, tmp_path / "runs", tmp_path / "cache")
    proc = _cli(args, tmp_path)
    for line in proc.stderr:
        if marker in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"{marker!r} never printed"
    again = _cli(args, tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert _predictions(tmp_path / "runs") == reference
    assert not list((tmp_path / "cache").rglob("*.partial-*")), "a dead run's partial stage was left behind"


def test_racing_runs_on_one_cache_and_output_root(dataset_dir, tmp_path):
    args = ["run", "--method", "mf", "--dataset", str(dataset_dir), "--out", str(tmp_path / "runs"),
            "--cache-dir", str(tmp_path / "cache"), "--set", "max_epochs=3", "--set", "dim=8"]
    procs = [_cli(args, tmp_path) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    (run_dir,) = list((tmp_path / "runs").iterdir())
    from collm_bench.records.store import metrics_match
    from collm_bench.records.predictions import metrics_of, verified_predictions

    assert metrics_match(read_record(run_dir).metrics, metrics_of(verified_predictions(run_dir)))
    stages = list((tmp_path / "cache" / "encoder-mf").iterdir())
    assert len(stages) == 1 and not list((tmp_path / "cache").rglob("*.partial-*"))


# --- damaged stage files are named and recomputed ------------------------------------------

def _zero_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(min(64, len(data) - middle))
    path.write_bytes(bytes(data))


DAMAGE = {
    "zeroed bytes, same size": lambda stage: _zero_middle(stage / "encoder.safetensors"),
    "truncated weights": lambda stage: (stage / "encoder.safetensors").write_bytes(b"\x08\x00\x00"),
    "weights deleted": lambda stage: (stage / "encoder.safetensors").unlink(),
    "stage.json not JSON": lambda stage: (stage / "stage.json").write_text("{not json"),
    "stage.json a list": lambda stage: (stage / "stage.json").write_text("[]"),
    "stage.json without checksums": lambda stage: (stage / "stage.json").write_text(json.dumps({"meta": {}})),
    "a file slipped in": lambda stage: (stage / "extra.bin").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_stage_is_named_and_computed_again(damage, registry, dataset_dir, tmp_path):
    request = RunRequest(method="mf", dataset=str(dataset_dir), out=tmp_path / "runs", cache_dir=str(tmp_path / "c"),
                         options={"max_epochs": "3", "dim": "8"})
    first = run(request, registry=registry, progress=lambda m: None)
    (stage,) = list((tmp_path / "c" / "encoder-mf").iterdir())
    DAMAGE[damage](stage)
    said = []
    again = run(request, registry=registry, progress=said.append)
    assert not again.record["timings"]["stages"]["encoder-mf"]["cached"]
    (warning,) = [m for m in said if "computing it again" in m]
    assert str(stage) in warning  # names the stage's file (or the stage)
    assert again.record["metrics"] == first.record["metrics"]
    third = run(request, registry=registry, progress=lambda m: None)
    assert third.record["timings"]["stages"]["encoder-mf"]["cached"]


def test_stage_files_are_readable_by_the_group_and_others(registry, dataset_dir, tmp_path):
    run(RunRequest(method="mf", dataset=str(dataset_dir), out=tmp_path / "runs", cache_dir=str(tmp_path / "c"),
                   options={"max_epochs": "2"}), registry=registry, progress=lambda m: None)
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [*(tmp_path / "c").rglob("*"), *(tmp_path / "runs").rglob("*")]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


# --- records and predictions are verified --------------------------------------------------

@pytest.fixture
def two_runs(registry, dataset_dir, tmp_path):
    out = tmp_path / "runs"
    dirs = [run(RunRequest(method=m, dataset=str(dataset_dir), out=out, cache_dir=str(tmp_path / "c"),
                           options={"max_epochs": "2"}), registry=registry, progress=lambda m: None).run_dir
            for m in ("mf", "lightgcn")]
    return out, dirs


def test_changed_predictions_are_refused_by_score_and_ensembles(two_runs, registry, dataset_dir, cli):
    out, (mf, lightgcn) = two_runs
    path = mf / "predictions.csv"
    lines = path.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    # a tampered member: scores replaced by the labels (an ensemble of it would score AUC 1.0)
    rows = [",".join(r.split(",")[:3] + [r.split(",")[2]] + r.split(",")[4:]) for r in rows]
    path.write_text("\n".join([header, *rows]) + "\n")
    code, _, err = cli(["score", str(mf)])
    assert code == 2 and "predictions.csv: sha256" in err and "differs" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match=r"predictions.csv: sha256 .* differs"):
        run(RunRequest(method="ensemble", dataset=str(dataset_dir), out=out,
                       options={"runs": f"{mf.name},{lightgcn.name}"}), registry=registry, progress=lambda m: None)


def test_leaderboards_skip_changed_predictions_and_note_unverifiable_records(two_runs, cli):
    out, (mf, lightgcn) = two_runs
    with open(mf / "predictions.csv", "a") as fh:
        fh.write("99,99,1,0.5,cold\n")
    (lightgcn / "predictions.csv").unlink()   # as a committed record: predictions not in git
    code, md, err = cli(["leaderboard", "--runs", str(out)])
    assert code == 0 and "| mf " not in md and "| lightgcn " in md
    assert f"{mf / 'record.json'}: skipped" in err and "sha256" in err
    assert ("1 of 1 records below" in err and "shown as recorded, not checked against predictions: "
            "1 without predictions.csv here (committed records keep none)" in err)


def test_malformed_records_are_named_and_skipped_by_leaderboards(two_runs, cli):
    out, (mf, lightgcn) = two_runs
    for name, change in {"missing": lambda r: r.pop("metrics"), "null": lambda r: r.update(seed=None),
                         "string": lambda r: r["metrics"]["overall"].update(auc="0.9")}.items():
        broken = out / f"broken-{name}"
        shutil.copytree(lightgcn, broken)
        record = json.loads((broken / "record.json").read_text())
        change(record)
        (broken / "record.json").write_text(json.dumps(record))
    (out / "not-json").mkdir()
    (out / "not-json" / "record.json").write_text("{")
    code, md, err = cli(["leaderboard", "--runs", str(out)])
    assert code == 0 and "| mf " in md and "| lightgcn " in md
    for name in ("broken-missing", "broken-null", "broken-string", "not-json"):
        assert f"{out / name / 'record.json'}: skipped" in err


IMPOSSIBLE = {
    "auc-above-one": (lambda r: r["metrics"]["overall"].update(auc=1.7), "'metrics.overall.auc' is 1.7, outside [0, 1]"),
    "uauc-negative": (lambda r: r["metrics"]["warm"].update(uauc=-3.2), "'metrics.warm.uauc' is -3.2, outside [0, 1]"),
    "nan": (lambda r: r["metrics"]["overall"].update(ndcg=float("nan")), "'metrics.overall.ndcg' is nan, not a finite"),
    "huge": (lambda r: r["metrics"]["overall"].update(auc=1e308), "'metrics.overall.auc' is 1e+308, outside [0, 1]"),
    "negative-time": (lambda r: r["timings"].update(train_seconds=-5), "'timings.train_seconds' is -5, outside"),
    "stage-time": (lambda r: r["timings"]["stages"].update(x={"seconds": float("inf")}), "'timings.stages.x.seconds' is inf"),
    "interval": (lambda r: r["intervals"].update(auc=[0.7, 0.6]), "'intervals.auc' has low above high"),
    "interval-strings": (lambda r: r["intervals"].update(auc=["a", "b"]), "'intervals.auc' is str, expected a number"),
    "negative-count": (lambda r: r["metrics"]["overall"].update(users=-1), "'metrics.overall.users' is -1, outside"),
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_a_record_with_an_impossible_number_is_named_and_skipped(two_runs, cli, case):
    """Every metric, interval, count and time is checked against its domain before anything is
    shown or ranked: an AUC of 1.7 or 1e308, NaN, a negative time never become a row."""
    out, (mf, lightgcn) = two_runs
    change, says = IMPOSSIBLE[case]
    broken = out / f"broken-{case}"
    shutil.copytree(lightgcn, broken)
    (broken / "predictions.csv").unlink()   # as a committed record: nothing to check the numbers against
    record = json.loads((broken / "record.json").read_text())
    change(record)
    (broken / "record.json").write_text(json.dumps(record))
    code, md, err = cli(["leaderboard", "--runs", str(out)])
    assert code == 0 and md.count("| lightgcn ") == 1 and "| mf " in md
    assert f"{broken / 'record.json'}: skipped ({says}" in err


def test_a_run_in_two_folders_counts_once(two_runs, cli):
    out, (mf, _) = two_runs
    shutil.copytree(mf, out / "copy" / mf.name)
    code, md, _ = cli(["leaderboard", "--runs", str(out)])
    (row,) = [line for line in md.splitlines() if line.startswith("| mf ")]
    assert row.rstrip().endswith("| seed 0  |") and "±" not in row


def test_record_text_is_escaped_in_markdown(two_runs, cli):
    out, (mf, _) = two_runs
    record = json.loads((mf / "record.json").read_text())
    record["label"] = "evil | column\n## heading <script>alert(1)</script>"
    (mf / "record.json").write_text(json.dumps(record))
    code, md, _ = cli(["leaderboard", "--runs", str(out)])
    (row,) = [line for line in md.splitlines() if "evil" in line]
    assert row.count(" | ") == md.splitlines()[4].count(" | ")   # as many columns as the header
    assert "<script>" not in md and "\n## heading" not in md


def test_predictions_without_a_record_are_named(two_runs, cli):
    out, (mf, _) = two_runs
    (mf / "record.json").unlink()
    _, _, err = cli(["leaderboard", "--runs", str(out)])
    assert f"{mf}: predictions.csv without record.json" in err
    code, _, err = cli(["score", str(mf)])
    assert code == 0 and "no record.json" in err


# --- names never leave their folder --------------------------------------------------------

@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", "two\nlines", "..", ""])
def test_a_crafted_dataset_name_is_refused(name, dataset_dir, tmp_path, registry):
    crafted = tmp_path / "crafted"
    shutil.copytree(dataset_dir, crafted)
    manifest = json.loads((crafted / "manifest.json").read_text())
    manifest["name"] = name
    (crafted / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="manifest.json: 'name'.*cannot name a folder"):
        run(RunRequest(method="mf", dataset=str(crafted), out=tmp_path / "out" / "runs"), registry=registry,
            progress=lambda m: None)
    assert not list((tmp_path / "out").rglob("record.json")) and not (tmp_path / "escaped").exists()


def test_a_plugin_registering_a_path_as_a_name_is_reported_not_loaded():
    from collm_bench import EncoderSpec, hookimpl

    class Crafty:
        @hookimpl
        def register_encoders(self, register):
            register(EncoderSpec(name="../../evil", build=lambda **_: None, options=type("O", (), {}),
                                 description="x"))

    registry = load_registry([("crafty", Crafty())], entry_points=False)
    assert "../../evil" not in registry.components["encoder"]
    (failure,) = registry.failures
    assert failure.plugin == "crafty" and "cannot name a folder" in failure.error


# --- bad options are refused before any work -----------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--method", "mf", "--sample-test", "0"], "--sample-test got 0"),
    (["--method", "mf", "--sample-test", "-3"], "--sample-test got -3"),
    (["--method", "mf", "--seed", "-1"], "--seed got -1"),
    (["--method", "mf", "--set", "max_epochs=0"], "option 'max_epochs' got 0; allowed: >= 1"),
    (["--method", "mf", "--set", "dim=0"], "option 'dim' got 0; allowed: >= 1"),
    (["--method", "mf", "--set", "batch_size=-1"], "option 'batch_size' got -1; allowed: >= 1"),
    (["--method", "mf", "--set", "lr=inf"], "option 'lr' got inf; allowed: a finite number > 0"),
    (["--method", "mf", "--set", "lr=nan"], "option 'lr' got nan"),
    (["--method", "mf", "--set", "lr=0"], "option 'lr' got 0.0; allowed: > 0"),
    (["--method", "tallrec", "--set", "max_steps=-5"], "option 'max_steps' got -5; allowed: >= 1"),
    (["--method", "tallrec", "--set", "eval_every=0"], "option 'eval_every' got 0; allowed: >= 1"),
    (["--method", "tallrec", "--set", "batch_size=0"], "option 'batch_size' got 0; allowed: >= 1"),
    (["--method", "collm", "--set", "step2_lr=inf"], "option 'step2_lr' got inf"),
    (["--method", "collm", "--set", "lora_dropout=1"], "option 'lora_dropout' got 1.0; allowed: >= 0 and < 1"),
    (["--method", "collm", "--encoder-set", "dim=0"], "option 'dim' got 0"),
    (["--method", "collm", "--backbone-set", "dtype=fp8"], "option 'dtype' got 'fp8'"),
    (["--method", "collm", "--backbone-set", "device=gpu0"], "option 'device' got 'gpu0'"),
    (["--method", "sasrec", "--set", "dim=10", "--set", "heads=3"], "dim (10) must be a multiple of heads (3)"),
])
def test_a_bad_option_is_one_line_before_any_work(args, says, cli, dataset_dir, tmp_path):
    _refused_before_any_work(args, says, cli, dataset_dir, tmp_path)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks what a machine without CUDA refuses")
@pytest.mark.parametrize("args, says", [
    (["--method", "tallrec", "--backbone-set", "device=cuda"], "device=cuda: torch sees no CUDA device"),
    (["--method", "collm", "--backbone-set", "quantization=8bit"], "quantization=8bit: bitsandbytes needs a CUDA"),
])
def test_what_this_machine_cannot_do_is_refused_before_any_work(args, says, cli, dataset_dir, tmp_path):
    _refused_before_any_work(args, says, cli, dataset_dir, tmp_path)


def _refused_before_any_work(args, says, cli, dataset_dir, tmp_path):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    code, _, err = cli(["run", *args, "--dataset", str(dataset_dir), "--out", str(out), "--cache-dir", str(cache)])
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not cache.exists() and not list(tmp_path.rglob("record.json"))


def test_an_unwritable_output_root_is_refused_before_any_work(cli, dataset_dir, tmp_path):
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "runs"        # below a regular file: no one can write there, root included
    code, _, err = cli(["run", "--method", "mf", "--dataset", str(dataset_dir), "--out", str(out),
                        "--cache-dir", str(tmp_path / "cache")])
    assert code == 2 and f"{out}: the output root cannot be written" in err and "--out" in err
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of ``size`` mounted in tmp_path (skipped where the kernel or the sandbox refuses)."""
    mounted = []

    def mount(name: str, size: str, readonly: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip() or 'mount failed'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_read_only_output_root_is_refused_before_any_work(tmpfs, cli, dataset_dir, tmp_path):
    out = tmpfs("ro", "1m", readonly=True)
    code, _, err = cli(["run", "--method", "mf", "--dataset", str(dataset_dir), "--out", str(out),
                        "--cache-dir", str(tmp_path / "cache")])
    assert code == 2 and "the output root cannot be written (Read-only file system)" in err
    assert not (tmp_path / "cache").exists()


def _fill(point: Path) -> None:
    fd = os.open(point / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_disk_is_one_line_naming_the_file(tmpfs, cli, dataset_dir, tmp_path):
    cache = tmpfs("cache", "64k")
    _fill(cache)
    code, _, err = cli(["run", "--method", "mf", "--dataset", str(dataset_dir), "--out", str(tmp_path / "runs"),
                        "--cache-dir", str(cache), "--set", "max_epochs=2"])
    assert code == 2 and len(err.strip().splitlines()) >= 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {cache}") and "No space left on device" in last and "free some space" in last
    assert not list(cache.rglob("*.partial-*"))


# --- datasets, suites ----------------------------------------------------------------------

def test_a_killed_prepare_leaves_nothing_behind(tmp_path, registry):
    from collm_bench.data.datasets import prepare_dataset, prepared_path

    target = prepared_path("synthetic", root=tmp_path, registry=registry)
    dead = target.parent / f".{target.name}.partial-999999999"   # no such process
    dead.mkdir(parents=True)
    prepare_dataset("synthetic", root=tmp_path, source="rows=300", registry=registry)
    assert not dead.exists() and (target / "manifest.json").exists()


def test_a_suite_file_cannot_switch_on_remote_code(tmp_path):
    from collm_bench.suites.file import read_suite

    path = tmp_path / "suite.toml"
    path.write_text('[backbone_options.hf]\ntrust_remote_code = true\n[[entry]]\nmethod = "tallrec"\n')
    with pytest.raises(UserError, match="cannot be set in a suite file.*--trust-remote-code"):
        read_suite(path)


def test_a_suite_skips_a_finished_hf_run(registry, dataset_dir, tmp_path):
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.suites.plan import Runner, expand
    from collm_bench.suites.file import read_suite

    tiny = registry.get("backbone", "tiny-llama").load(BackboneOptions())
    tiny.model.save_pretrained(tmp_path / "model")
    tiny.tokenizer.save_pretrained(tmp_path / "model")
    path = tmp_path / "suite.toml"
    path.write_text(f'[suite]\nout = "runs"\ndatasets = ["{dataset_dir}"]\nbackbones = ["hf:{tmp_path / "model"}"]\n'
                    '[options.tallrec]\nmax_steps = 2\neval_every = 2\nbatch_size = 8\nvalid_rows = 12\n'
                    'history_titles = 2\n[[entry]]\nmethod = "tallrec"\n')
    spec = read_suite(path)
    statuses = []
    for _ in range(2):
        runner = Runner(spec, registry, out=spec.out, cache_dir=str(tmp_path / "cache"), progress=lambda m: None)
        outcomes = runner.run_all(expand(spec, registry))
        statuses.append([o.status for o in outcomes])
    assert statuses == [["ran"], ["skipped"]]
    # the record names the plugin that loaded the weights, with its version, as for a named backbone
    from collm_bench.records.store import read_record

    record = read_record(outcomes[0].run_dir)
    assert record.data["backbone"] == f"hf:{tmp_path / 'model'}"
    assert registry.entry("backbone", "hf").plugin in record.data["versions"]["plugins"]
