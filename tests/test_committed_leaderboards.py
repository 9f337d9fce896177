"""CI drift check: every committed leaderboard equals what its committed records produce."""
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from collm_bench.leaderboard import render
from collm_bench.records import iter_records

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
# board file -> (records folder, paper table number or None for the plain leaderboard), from the
# list the refresh job reads too
BOARDS = {b["file"]: (b["runs"], b.get("table")) for b in tomllib.loads((ROOT / "boards.toml").read_text())["board"]}


def _expected(runs: str, table: int | None) -> str:
    if table is None:
        return render(ROOT / runs, "md")
    from collm_bench.paper_tables import render_tables

    return render_tables(table, (r for _, r in iter_records(ROOT / runs)), "md", None)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_committed_leaderboard_matches_its_records(board):
    runs, table = BOARDS[board]
    if not (ROOT / board).exists():
        pytest.fail(f"leaderboards/{board} is missing")
    how = f"--table {table} " if table else ""
    assert (ROOT / board).read_text() == _expected(runs, table), (
        f"leaderboards/{board} is stale: regenerate it with "
        f"collm-bench leaderboard --runs leaderboards/{runs} {how}--output leaderboards/{board}")


def test_every_committed_record_has_a_leaderboard():
    record_dirs = {p.parent.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("runs/*/*/record.json")}
    assert record_dirs <= {runs for runs, _ in BOARDS.values()}


def test_stale_committed_records_are_listed_by_name():
    """A warning, not a failure: a record whose code changed since it was made (or that predates
    records keeping their code) should be regenerated (``collm-bench suite FILE --stale``)."""
    import warnings

    stale = []
    for runs in sorted({runs for runs, _ in BOARDS.values()}):  # a folder behind several tables once
        for run_dir, record in iter_records(ROOT / runs, report=lambda message: None):
            reasons = record.stale_reasons()
            if reasons:
                stale.append(f"{run_dir.relative_to(ROOT)}: {reasons[0]}"
                             + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))
    if stale:
        warnings.warn(f"{len(stale)} committed records are stale (rerun their suites with --stale):\n  "
                      + "\n  ".join(stale), stacklevel=1)


PAGES = {p["file"]: p for p in tomllib.loads((ROOT / "boards.toml").read_text()).get("page", [])}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_committed_page_matches_its_records(page):
    import importlib.util

    entry = PAGES[page]
    spec = importlib.util.spec_from_file_location(Path(entry["script"]).stem, ROOT.parent / entry["script"])
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected = script.render([ROOT / runs for runs in entry["runs"]])
    assert (ROOT / page).read_text() == expected, (
        f"leaderboards/{page} is stale: regenerate it with python {entry['script']} "
        + " ".join(f"leaderboards/{runs}" for runs in entry["runs"]) + f" --output leaderboards/{page}")
