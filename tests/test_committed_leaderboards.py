"""CI drift check: every committed leaderboard equals what its committed records produce."""
from pathlib import Path

import pytest

from collm_bench.leaderboard import render

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
BOARDS = {"ml-100k.md": "runs/ml-100k"}


@pytest.mark.parametrize("board,runs", sorted(BOARDS.items()))
def test_committed_leaderboard_matches_its_records(board, runs):
    expected = render(ROOT / runs, "md")
    assert (ROOT / board).read_text() == expected, (
        f"leaderboards/{board} is stale: regenerate it with "
        f"collm-bench leaderboard --runs leaderboards/{runs} --output leaderboards/{board}")


def test_every_committed_record_has_a_leaderboard():
    record_dirs = {p.parent.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("runs/*/*/record.json")}
    assert record_dirs <= set(BOARDS.values())
