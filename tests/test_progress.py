"""What a run prints while it works: one summary line per loop in logs, nothing with --quiet,
every step with --verbose, a tqdm bar (rate, time left) on a terminal."""
import pytest

from collm_bench import progress
from collm_bench.testing import tiny_dataset


@pytest.fixture
def dataset_dir(tmp_path):
    tiny_dataset(tmp_path / "tiny")
    return tmp_path / "tiny"


@pytest.fixture(autouse=True)
def _normal_level():
    yield
    progress.set_level(progress.NORMAL)


def _run(cli, dataset_dir, tmp_path, *flags):
    return cli([*flags, "run", "--method", "mf", "--dataset", str(dataset_dir), "--out", str(tmp_path / "runs"),
                "--cache-dir", str(tmp_path / "cache"), "--set", "max_epochs=3", "--set", "dim=8"])


def test_logs_get_one_summary_line_per_loop(cli, dataset_dir, tmp_path):
    code, out, err = _run(cli, dataset_dir, tmp_path)
    assert code == 0 and "| mf " in out
    (line,) = [x for x in err.splitlines() if x.startswith("encoder training:")]
    assert line.startswith("encoder training: 3/3 epochs in ") and "epoch/s" in line and "valid_auc" in line
    assert "epoch 1:" not in err


def test_quiet_prints_only_the_result(cli, dataset_dir, tmp_path):
    code, out, err = _run(cli, dataset_dir, tmp_path, "--quiet")
    assert code == 0 and "| mf " in out and err == ""


def test_verbose_prints_every_epoch(cli, dataset_dir, tmp_path):
    code, _, err = _run(cli, dataset_dir, tmp_path, "-v")
    assert code == 0 and all(f"epoch {n}: loss" in err for n in (1, 2, 3))


def test_quiet_and_verbose_exclude_each_other(cli):
    code, _, err = cli(["-q", "-v", "plugins"])
    assert code == 2 and "exclude each other" in err


def test_a_terminal_gets_a_tqdm_bar(monkeypatch, capsys):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    with progress.bar(4, "tuning", unit="step") as shown:
        assert shown.tqdm is not None
        shown.update(4)
        shown.note(loss=0.5)
    err = capsys.readouterr().err
    assert "tuning: 4/4 steps in" in err and "loss 0.5000" in err
