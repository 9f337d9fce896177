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


def test_the_test_workflow_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "python -m pytest" in readme
    assert "run: python -m pytest\n" in (ROOT / ".github" / "workflows" / "tests.yml").read_text()
    assert "scripts/refresh_leaderboards.py" in (ROOT / ".github" / "workflows" / "refresh-leaderboards.yml").read_text()


def test_the_refresh_steps_run_here(tmp_path):
    for part in ("leaderboards", "scripts"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")
    env = {k: v for k, v in os.environ.items() if k != "COLLM_BENCH_ML1M_COLLM"}
    env["COLLM_BENCH_DATA"] = str(tmp_path / "no-data")   # plans without downloading anything
    summary = tmp_path / "summary.md"
    proc = subprocess.run([sys.executable, str(tmp_path / "scripts" / "refresh_leaderboards.py"), "--dry-run",
                           "--summary", str(summary), "--artifacts", str(tmp_path / "predictions"),
                           "--site", str(tmp_path / "site")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = summary.read_text()
    assert "| table7.toml | - | skipped | needs Qwen2-1.5B weights" in text
    assert "| table2.toml | runs/paper-ml-1m-collm | skipped | needs the dataset folder in $COLLM_BENCH_ML1M_COLLM |" in text
    assert "| ml-100k.toml | runs/ml-100k | dry run | 6 runs:" in text
    assert "without predictions here (not verifiable)" in text
    assert (tmp_path / "site" / "paper" / "index.html").exists() and (tmp_path / "site" / "ml-100k" / "configs").is_dir()
    for board in (ROOT / "leaderboards").glob("*.md"):  # re-rendered from the same records: unchanged
        assert (tmp_path / "leaderboards" / board.name).read_text() == board.read_text(), board.name
