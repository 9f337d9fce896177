"""A metric that cannot be computed on a run's rows (one label only, overall or in a subset) is
written as null with its reason, said by the run in one line and by the board in the cell; every
JSON the program writes is strict (no NaN)."""
import json
import math

import pytest

from collm_bench.data.format import load_prepared, write_json, write_prepared
from collm_bench.testing import tiny_dataset


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def one_label(tmp_path):
    tiny_dataset(tmp_path / "src")
    data = load_prepared(tmp_path / "src")
    inter = data.interactions.copy()
    inter.loc[inter.split == "test", "label"] = 1        # the test split holds positives only
    write_prepared(tmp_path / "d", inter, data.items, name="onelabel", protocol={"label": "x"}, item_noun="movie")
    return tmp_path / "d"


def test_an_undefined_metric_is_null_with_its_reason_said_by_run_and_board(tmp_path, cli, one_label):
    out = tmp_path / "runs"
    code, stdout, err = cli(["run", "--method", "mf", "--dataset", str(one_label), "--full-test", "--out", str(out),
                             "--set", "max_epochs=2"])
    assert code == 0, err
    assert "Warning" not in err and "All-NaN" not in err               # no raw library warning
    lines = [line for line in err.splitlines() if "undefined on its rows, written as null" in line]
    assert len(lines) == 1 and "overall auc, warm auc, cold auc (the rows hold one label only)" in lines[0]
    record = _strict(next(out.glob("*/record.json")).read_text())
    assert record["metrics"]["overall"]["auc"] is None and record["metrics"]["overall"]["logloss"] is not None
    assert record["undefined"]["overall"]["auc"] == "the rows hold one label only"
    assert record["undefined"]["overall"]["uauc"] == "no user has both labels and 2+ rows"
    assert record["intervals"]["auc"] is None
    assert "| undefined |" in stdout.replace("  ", " ").replace("  ", " ") or "undefined" in stdout
    assert "Ranked by AUC (rows where it is undefined last)." in stdout
    code, board, _ = cli(["leaderboard", "--runs", str(out), "--format", "json"])
    table = _strict(board)["onelabel"][0]
    assert table["undefined"]["AUC"] == "the rows hold one label only" and table["AUC"] == [None]
    code, _, err = cli(["score", str(next(out.glob("*")))])
    assert code == 0, err


def test_a_null_metric_without_its_reason_is_a_malformed_record():
    from pathlib import Path

    from collm_bench.records.record import record_problem

    committed = next((Path(__file__).parents[1] / "leaderboards" / "runs" / "ml-100k").glob("*mf*/record.json"))
    record = json.loads(committed.read_text())
    record["metrics"]["overall"]["auc"] = None
    record["undefined"] = {"overall": {"uauc": "no user has both labels and 2+ rows"}}
    assert record_problem(record) == "'metrics.overall.auc' is null without its reason in 'undefined'"
    record["undefined"] = {"overall": {"auc": "the rows hold one label only"}}
    assert record_problem(record) is None
    record["undefined"] = {"overall": {"auc": 3}}
    assert record_problem(record) == "'undefined' is not an object of subsets mapping metrics to reasons"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_no_json_file_is_written_with_a_non_finite_number(tmp_path, value):
    with pytest.raises(ValueError, match=r"would hold a non-finite number at metrics\.overall\[1\]"):
        write_json(tmp_path / "x.json", {"metrics": {"overall": [0.5, value]}})
    assert not (tmp_path / "x.json").exists()
