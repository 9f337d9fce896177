import json
import subprocess
import sys

import pytest


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom collm_bench.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print([m for m in ('torch', 'transformers', 'peft', 'pandas') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_dataset_is_one_line_exit_2(cli, tmp_path):
    code, _, err = cli(["data", "info", "ml-1mm", "--data-dir", str(tmp_path)])
    assert code == 2
    assert err.count("\n") == 1 and "unknown dataset 'ml-1mm'" in err and "did you mean" in err


def test_missing_directory_is_one_line(cli):
    code, _, err = cli(["data", "info", "./no/such/dir"])
    assert code == 2 and "no such directory" in err and "Traceback" not in err


def test_bad_set_option(cli):
    code, _, err = cli(["run", "--method", "mf", "--set", "lr"])
    assert code == 2 and "KEY=VALUE" in err


def test_unknown_option_key_is_rejected_before_any_work(cli, tmp_path):
    code, _, err = cli(["run", "--method", "mf", "--set", "lrr=0.1", "--dataset", str(tmp_path)])
    assert code == 2 and "unknown option 'lrr'" in err and "did you mean 'lr'" in err


def test_data_info_on_prepared_dir(cli, tmp_path):
    from collm_bench.testing import tiny_dataset

    tiny_dataset(tmp_path / "tiny")
    code, out, _ = cli(["data", "info", str(tmp_path / "tiny")])
    assert code == 0
    assert "#train" in out and "| 96 " in out and "test warm" in out


def test_plugins_text_lists_failures(cli, monkeypatch):
    import collm_bench.api.registry as p

    class FakeEP:
        name, dist = "broken-one", None

        @staticmethod
        def load():
            raise ImportError("nope")

    monkeypatch.setattr(p, "_entry_points", lambda: [FakeEP()])
    p.set_registry(None)
    try:
        code, out, _ = cli(["plugins"])
    finally:
        p.set_registry(None)
    assert code == 0
    assert "broken-one" in out and "nope" in out


def test_score_reports_match(cli, tmp_path):
    from collm_bench.records import store as records
    from collm_bench.records import predictions
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    predictions.write_predictions(run_dir, [1, 1, 2, 2], [5, 6, 5, 6], [1, 0, 0, 1], [0.9, 0.2, 0.4, 0.3],
                              ["warm", "warm", "cold", "cold"])
    base = {"run_id": "run", "method": "m", "seed": 0, "dataset": {"name": "d"}, "config": {},
            "evaluation": {}, "timings": {}}
    records.write_record(run_dir, {**base, "metrics": predictions.metrics_from_predictions(run_dir)})
    code, out, err = cli(["score", str(run_dir)])
    assert code == 0 and "metrics match record.json" in out
    assert "no checksum" in err  # a record without one is only compared by its metrics
    assert json.loads(out.split("metrics match")[0])["overall"]["auc"] == pytest.approx(0.75)
    records.write_record(run_dir, {**base, "metrics": {"overall": {"auc": 0.5}}})
    code, _, err = cli(["score", str(run_dir)])
    assert code == 1 and "DIFFER" in err


def test_unexpected_errors_are_one_line_without_traceback(cli, tmp_path, monkeypatch):
    import collm_bench.reporting.leaderboard as lb

    def boom(*a, **k):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(lb, "render", boom)
    code, _, err = cli(["leaderboard", "--runs", str(tmp_path)])
    assert code == 1 and "Traceback" not in err
    assert err.strip() == "error: RuntimeError: something broke (run with --debug for the traceback)"


def test_registered_name_wins_over_a_same_named_folder(tmp_path, monkeypatch):
    from collm_bench.data.datasets import resolve_dataset
    from collm_bench.testing import tiny_dataset

    (tmp_path / "ml-100k").mkdir()  # e.g. what unzipping GroupLens leaves
    tiny_dataset(tmp_path / "prepared")
    monkeypatch.chdir(tmp_path)
    import collm_bench.data.datasets as ds

    monkeypatch.setattr(ds, "prepare_dataset", lambda name, **kw: tmp_path / "prepared")
    assert resolve_dataset("ml-100k").name == "tiny"
    assert resolve_dataset(str(tmp_path / "prepared")).name == "tiny"


def test_an_unknown_flag_is_clicks_usage_error_with_close_matches(cli):
    """typer >= 0.29 vendors its own click: its usage errors must not fall through to the generic
    'run with --debug' line."""
    code, _, err = cli(["run", "--method", "mf", "--sample-tst", "300"])
    assert code == 2 and "No such option: --sample-tst" in err and "--sample-test" in err
    assert "--debug" not in err and "Traceback" not in err
