"""--log-to mlflow and collm-bench log: records reach MLflow, read back through MLflow's own API."""
import json

import pytest

mlflow = pytest.importorskip("mlflow", reason="pip install 'collm-bench[tracking]'")

from collm_bench.api.loggers import LoggerSpec  # noqa: E402
from collm_bench.api.registry import hookimpl, load_registry, set_registry  # noqa: E402
from collm_bench.testing import tiny_dataset  # noqa: E402

TINY_LLM = ["--set", "max_steps=4", "--set", "eval_every=2", "--set", "batch_size=8", "--set", "history_titles=3",
            "--set", "valid_rows=12", "--set", "warmup_steps=1"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tests")
    monkeypatch.chdir(tmp_path)   # MLflow writes artifacts beside the store by default
    return mlflow.MlflowClient(tracking_uri=uri)


def _runs(client):
    experiment = client.get_experiment_by_name("tests")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def test_a_run_reaches_mlflow_with_its_metrics_options_and_curves(tmp_path, cli, store):
    data = tmp_path / "tiny"
    tiny_dataset(data)
    out = tmp_path / "runs"
    code, stdout, err = cli(["run", "--method", "tallrec", "--backbone", "tiny-llama", "--dataset", str(data),
                             "--full-test", "--out", str(out), *TINY_LLM, "--log-to", "mlflow"])
    assert code == 0, err
    record = json.loads(next(out.glob("*/record.json")).read_text())
    (run,) = _runs(store)
    assert "logged " in err and "to mlflow: MLflow run " + run.info.run_id in err
    assert run.data.tags["collm_bench.run_id"] == record["run_id"]
    assert run.data.tags["collm_bench.predictions_sha256"] == record["predictions_sha256"]
    assert run.data.tags["collm_bench.stage.llm-step1"] == record["timings"]["stages"]["llm-step1"]["key"]
    assert run.data.params["method"] == "tallrec" and run.data.params["options.max_steps"] == "4"
    assert run.data.metrics["overall.auc"] == pytest.approx(record["metrics"]["overall"]["auc"])
    assert run.data.metrics["overall.auc.low"] == pytest.approx(record["intervals"]["auc"][0])
    assert run.data.metrics["train_seconds"] == pytest.approx(record["timings"]["train_seconds"])
    history = store.get_metric_history(run.info.run_id, "llm-step1.valid_auc")
    assert [(m.step, round(m.value, 6)) for m in history] == \
        [tuple(point) for point in record["training"]["llm-step1"]["valid_curve"]]
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="record.json",
                                               dst_path=str(tmp_path / "downloaded"))
    artifact = json.loads(open(path).read())
    assert artifact["run_id"] == record["run_id"]
    # logged again (collm-bench log over the output folder): not twice
    code, stdout, _ = cli(["log", str(out), "--to", "mlflow"])
    assert code == 0 and "already there" in stdout and len(_runs(store)) == 1


def test_an_encoder_run_logs_its_epoch_curve(tmp_path, cli, store):
    data = tmp_path / "tiny"
    tiny_dataset(data)
    out = tmp_path / "runs"
    code, _, err = cli(["run", "--method", "mf", "--dataset", str(data), "--full-test", "--out", str(out),
                        "--set", "max_epochs=3", "--log-to", "mlflow"])
    assert code == 0, err
    record = json.loads(next(out.glob("*/record.json")).read_text())
    (run,) = _runs(store)
    history = store.get_metric_history(run.info.run_id, "valid_auc")   # one point per epoch
    curve = record["training"]["valid_curve"]
    assert len(curve) >= 1 and [(m.step, round(m.value, 6)) for m in history] == list(enumerate(curve))


class _Broken:
    __version__ = "0"

    @staticmethod
    @hookimpl
    def register_loggers(register):
        def log(record, run_dir):
            raise RuntimeError("tracker down")
        register(LoggerSpec(name="broken", log=log, description="always fails"))


def test_a_failing_tracker_never_fails_the_run(tmp_path, cli):
    import collm_bench_plugins.encoders.mf as mf

    set_registry(load_registry([("mf", mf), ("broken", _Broken())], entry_points=False))
    try:
        data = tmp_path / "tiny"
        tiny_dataset(data)
        code, _, err = cli(["run", "--method", "mf", "--dataset", str(data), "--full-test", "--out",
                            str(tmp_path / "runs"), "--set", "max_epochs=2", "--log-to", "broken"])
        assert code == 0, err
        assert "not logged tiny__mf__seed0__" in err and "to broken: RuntimeError: tracker down" in err
        code, _, err = cli(["run", "--method", "mf", "--dataset", str(data), "--log-to", "nope"])
        assert code == 2 and "--log-to: unknown logger 'nope'" in err   # refused before anything runs
    finally:
        set_registry(None)
