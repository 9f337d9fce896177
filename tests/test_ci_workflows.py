"""The CI workflows validate against GitHub's workflow schema (check-jsonschema's vendored copy,
offline), and the refresh job's steps run here through the same script."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"tests.yml", "refresh-leaderboards.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_schema(workflow):
    pytest.importorskip("check_jsonschema")
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(workflow)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_and_the_workflow_run_the_readme_test_command():
    """One test command for a newcomer, CI and the workflow: the README's quick start says
    ``make test``, and both CI scripts run exactly that (the workflow adds only torch's index)."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick_start.splitlines() if line.strip()] == ["make run", "make test"]
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()
    assert "run: make test TORCH_INDEX=" in (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    assert "scripts/refresh_leaderboards.py" in (ROOT / ".github" / "workflows" / "refresh-leaderboards.yml").read_text()


def _copy_repo(tmp_path):
    for part in ("leaderboards", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")


def _refresh(tmp_path, *args, **env):
    full = {k: v for k, v in os.environ.items() if k != "COLLM_BENCH_ML1M_COLLM"}
    full.update(COLLM_BENCH_DATA=str(tmp_path / "no-data"), **env)   # plans without downloading anything
    summary = tmp_path / "summary.md"
    proc = subprocess.run([sys.executable, str(tmp_path / "scripts" / "refresh_leaderboards.py"), *args,
                           "--summary", str(summary)], capture_output=True, text=True, env=full, timeout=600)
    return proc, (summary.read_text() if summary.exists() else "")


def test_the_refresh_steps_run_here(tmp_path):
    _copy_repo(tmp_path)
    proc, text = _refresh(tmp_path, "--dry-run", "--artifacts", str(tmp_path / "predictions"),
                          "--site", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| suites/table7.toml | runs/paper | skipped | needs Qwen2-1.5B weights" in text
    assert "| suites/table2.toml | runs/paper-ml-1m-collm | skipped | needs the dataset folder in $COLLM_BENCH_ML1M_COLLM |" in text
    assert "| suites/ml-100k.toml | runs/ml-100k | dry run | 10 runs:" in text
    assert "without predictions here (not verifiable)" in text
    # a suite skipped for want of its dataset plans nothing, so its committed records are no orphans
    assert ("Records in runs/paper-ml-1m-collm: which of them no suite produces any more is unknown (suites/table2.toml: "
            "needs the dataset folder in $COLLM_BENCH_ML1M_COLLM), so none is deleted.") in text
    assert "Records in runs/paper-ml-1m-collm that no suite produces" not in text
    # no prepared ml-100k here either: its suites cannot name their runs, so nothing is called an orphan
    assert ("Records in runs/paper: which of them no suite produces any more is unknown (suites/table2.toml: some runs "
            "have no run id here (a dataset not prepared, or an optional plugin not installed)), so none is "
            "deleted.") in text
    # a recipe study is the evidence of the cpu preset's choices: never rerun, never pruned
    assert "| suites/recipe-ml-100k.toml | runs/recipe-ml-100k | skipped | a study, rerun by hand: its records" in text
    assert "Records in runs/recipe-ml-100k that no suite produces" not in text
    assert (tmp_path / "site" / "paper" / "index.html").exists() and (tmp_path / "site" / "ml-100k" / "configs").is_dir()
    index = (tmp_path / "site" / "index.html").read_text()   # one site: an index linking every board set's page
    for runs in ("paper", "ml-100k", "smollm2-ml-100k"):
        assert f'<a href="{runs}/index.html">' in index, runs
    assert "collm-bench leaderboard: ml-100k (minilm, smollm2) (boards: table2-ml-100k" in index
    for board in (ROOT / "leaderboards").glob("*.md"):  # re-rendered from the same records: unchanged
        assert (tmp_path / "leaderboards" / board.name).read_text() == board.read_text(), board.name


def _refresh_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("refresh_leaderboards", ROOT / "scripts" / "refresh_leaderboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_refresh_reads_planned_run_ids_and_finds_orphans(tmp_path):
    refresh = _refresh_script()
    table = ("[1/2] would run: ml+x collm-mf on minilm seed 0\n"
             "  #  entry   run                             status     run id                         note\n"
             "---  ------  ------------------------------  ---------  -----------------------------  ----\n"
             "  1  collm   ml+x collm-mf on minilm seed 0  would run  ml+x__collm__seed0__0e9cf8a6ca\n"
             "  2  mf      ml+x mf seed 0                  exists     ml+x__mf__seed0__6c0f7b2842\n"
             "2 runs: 1 would run, 1 skipped\n")
    assert refresh.planned_ids(table) == {"ml+x__collm__seed0__0e9cf8a6ca", "ml+x__mf__seed0__6c0f7b2842"}
    # a cell that could not be planned (no run id): what the suite produces is unknown
    assert refresh.planned_ids(table.replace("ml+x__mf__seed0__6c0f7b2842", "-")) is None
    for name in ("ml+x__collm__seed0__0e9cf8a6ca", "ml+x__collm__seed0__1111111111"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.json").write_text("{}")
    assert [p.name for p in refresh.orphans(tmp_path, refresh.planned_ids(table))] == ["ml+x__collm__seed0__1111111111"]


def test_the_refresh_refuses_an_unknown_records_folder():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "refresh_leaderboards.py"), "--only", "nope",
                           "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--only nope: no such records folder in boards.toml" in proc.stderr


def test_the_refresh_summary_says_what_moved(tmp_path, monkeypatch):
    import json

    refresh = _refresh_script()
    runs = tmp_path / "leaderboards" / "runs" / "paper"

    def write(name, auc, uauc):
        (runs / name).mkdir(parents=True, exist_ok=True)
        (runs / name / "record.json").write_text(json.dumps({"metrics": {"overall": {"auc": auc, "uauc": uauc}}}))

    write("a__mf__seed0__0000000000", 0.6, 0.5)
    write("a__mf__seed1__1111111111", 0.7, 0.5)
    write("a__mf__seed2__2222222222", 0.8, 0.5)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "records"], check=True)
    write("a__mf__seed0__0000000000", 0.65, 0.55)          # changed
    write("a__mf__seed1__1111111111", 0.7, 0.5)            # rerun, same numbers
    shutil.rmtree(runs / "a__mf__seed2__2222222222")       # removed
    write("a__lightgcn__seed0__3333333333", 0.61, 0.52)    # new
    monkeypatch.setattr(refresh, "ROOT", tmp_path)
    assert sorted(refresh.moved_records()) == [
        "- paper/a__lightgcn__seed0__3333333333: new, AUC 0.6100 / UAUC 0.5200",
        "- paper/a__mf__seed0__0000000000: AUC 0.6000 / UAUC 0.5000 -> AUC 0.6500 / UAUC 0.5500",
        "- paper/a__mf__seed2__2222222222: removed (was AUC 0.8000 / UAUC 0.5000)",
    ]


def test_the_refresh_names_a_listed_suite_file_that_is_missing(tmp_path):
    _copy_repo(tmp_path)
    with open(tmp_path / "leaderboards" / "boards.toml", "a") as fh:
        fh.write('\n[[suite]]\nfile = "gone.toml"\nneeds = "nothing"\n')
    proc = subprocess.run([sys.executable, str(tmp_path / "scripts" / "refresh_leaderboards.py"), "--dry-run"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "leaderboards/boards.toml lists gone.toml, which does not exist: restore it or remove its [[suite]] entry"]


def test_the_refresh_refuses_another_split_than_the_committed_records(tmp_path):
    from collm_bench.testing import tiny_dataset

    _copy_repo(tmp_path)
    tiny_dataset(tmp_path / "tiny")
    proc, text = _refresh(tmp_path, "--dry-run", "--only", "paper-ml-1m-collm", "--prune",
                          COLLM_BENCH_ML1M_COLLM=str(tmp_path / "tiny"))
    assert f"$COLLM_BENCH_ML1M_COLLM={tmp_path / 'tiny'} is another split than the committed records" in text
    assert "that no suite produces any more" not in text   # nothing planned on it, nothing pruned
    assert "Selected with --only but not refreshed (every suite writing there was skipped or failed): " \
           "runs/paper-ml-1m-collm" in text and proc.returncode == 1
    committed = sorted(p.name for p in (ROOT / "leaderboards/runs/paper-ml-1m-collm").iterdir())
    assert sorted(p.name for p in (tmp_path / "leaderboards/runs/paper-ml-1m-collm").iterdir()) == committed


def test_a_dataset_folder_with_a_bad_manifest_skips_its_board(tmp_path, monkeypatch):
    refresh = _refresh_script()
    (tmp_path / "manifest.json").write_text("{}")
    monkeypatch.setenv("COLLM_BENCH_ML1M_COLLM", str(tmp_path))
    dataset, reason = refresh.input_dataset("COLLM_BENCH_ML1M_COLLM", "runs/paper-ml-1m-collm")
    assert dataset is None and reason.startswith(f"$COLLM_BENCH_ML1M_COLLM={tmp_path}: ") and "format" in reason


def test_a_refreshing_suite_is_echoed_line_by_line_and_read_whole(capfd):
    """A suite runs for hours in CI: its lines reach the log as they come (stderr), and the
    refresh still reads its whole output (the run table, the counts)."""
    refresh = _refresh_script()
    status, text = refresh.streamed("--help")
    assert status == 0 and "suite" in text
    assert capfd.readouterr().err == text
