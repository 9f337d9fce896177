"""No malformation anywhere in a record stops a board: every field of a real record is turned
into each of several wrong values, and the record is either named and skipped by the reader
(``record_problem``) or rendered by every board, paper table and HTML page, and its staleness
checked, without an error."""
import contextlib
import io
import json
from pathlib import Path

import pytest

from collm_bench.records.record import RunRecord, record_problem
from collm_bench.reporting.html import render_html
from collm_bench.reporting.leaderboard import render_records
from collm_bench.reporting.paper_tables import render_tables

RUNS = Path(__file__).resolve().parents[1] / "leaderboards" / "runs" / "paper"
WRONG = [None, "x", -1, 1e308, float("nan"), float("inf"), [], {}, True, [1, "a"], {"a": "b"}]


def _record(pattern: str) -> dict:
    return json.loads(next(RUNS.glob(f"{pattern}/record.json")).read_text())


def _leaves(value, path=()):
    """Every key and list position (the first two of a list), not inside the code digests."""
    if isinstance(value, dict):
        if path[:1] == ("dependencies",) and len(path) >= 2:
            return
        for key, child in value.items():
            yield path + (key,)
            yield from _leaves(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value[:2]):
            yield path + (index,)
            yield from _leaves(child, path + (index,))


def _mutated(base: dict, path: tuple, wrong) -> dict:
    record = json.loads(json.dumps(base))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = wrong
    return json.loads(json.dumps(record))   # as read back from disk (NaN included, as json reads it)


BASE = _record("*__collm__*")
OTHER = RunRecord(_record("*__mf__seed0*"))


@pytest.mark.parametrize("path", sorted({".".join(map(str, p)) for p in _leaves(BASE)}))
def test_a_wrong_value_anywhere_is_skipped_or_rendered(path):
    keys = tuple(int(k) if k.isdigit() else k for k in path.split("."))
    for wrong in WRONG:
        data = _mutated(BASE, keys, wrong)
        if record_problem(data):
            continue   # named and skipped by every reader
        record = RunRecord(data)
        with contextlib.redirect_stderr(io.StringIO()):
            for fmt in ("md", "csv", "json"):
                render_records([record, OTHER], fmt)
            render_html([record, OTHER])
            render_tables(2, [record, OTHER], "md", None)
            record.stale_reasons()
