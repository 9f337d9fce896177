"""String user and item ids (Amazon-style ``A1B2...``, ``B000...``) are accepted and kept:
predictions carry them, and a dataset whose string ids sort as its integer ids did gives the
same results."""
import pandas as pd
import pytest

from collm_bench.data.format import load_prepared, write_prepared
from collm_bench.errors import DataError
from collm_bench.api.registry import load_registry
from collm_bench.records.predictions import read_predictions
from collm_bench.runner import RunRequest, run
from collm_bench.testing import tiny_frames


def _write(folder, users=lambda u: u, items=lambda i: i):
    frame, titles = tiny_frames()
    frame = frame.assign(user=frame["user"].map(users), item=frame["item"].map(items))
    titles = titles.assign(item=titles["item"].map(items))
    write_prepared(folder, frame, titles, name="ids", protocol="test", item_noun="movie")
    return folder


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _mf(registry, folder, out):
    request = RunRequest(method="mf", dataset=str(folder), out=out, cache_dir=str(out / "cache"),
                         encoder_options={"max_epochs": "3", "dim": "8"})
    return run(request, registry=registry, progress=lambda m: None)


def test_string_ids_are_kept_in_predictions_with_the_same_metrics(registry, tmp_path):
    plain = _mf(registry, _write(tmp_path / "int"), tmp_path / "a")
    named = _mf(registry, _write(tmp_path / "str", users=lambda u: f"A{u:04d}", items=lambda i: f"B{i:05d}"),
                tmp_path / "b")
    assert named.record["metrics"] == plain.record["metrics"]  # same order of dense indices
    predictions = read_predictions(named.run_dir)
    assert predictions["user"].str.fullmatch(r"A\d{4}").all()
    assert predictions["item"].str.fullmatch(r"B\d{5}").all()
    ints = read_predictions(plain.run_dir)
    assert (predictions["user"] == ints["user"].map(lambda u: f"A{int(u):04d}")).all()
    # zero-padded numbers stay the strings written, on disk and when read back (not 1.0, not merged)
    padded = _mf(registry, _write(tmp_path / "pad", users=lambda u: f"{u:04d}"), tmp_path / "c")
    assert padded.record["metrics"] == plain.record["metrics"]
    assert read_predictions(padded.run_dir)["user"].str.fullmatch(r"\d{4}").all()


def test_id_types_are_decided_per_column_and_spellings_never_merge(tmp_path):
    loaded = load_prepared(_write(tmp_path / "a", users=lambda u: f"user{u}"))
    assert loaded.interactions["user"].dtype == object and loaded.interactions["item"].dtype == "int64"
    assert loaded.items["item"].dtype == "int64"
    # "07" is not 7: with one such id, every item id stays the string it is
    odd = load_prepared(_write(tmp_path / "b", items=lambda i: f"0{i}" if i == 3 else str(i)))
    assert odd.interactions["item"].dtype == object and "03" in set(odd.items["item"])


def test_an_id_with_whitespace_is_refused_naming_the_file(tmp_path):
    with pytest.raises(DataError, match=r"interactions.csv.gz.*user id 'a 1'.*contains whitespace"):
        load_prepared(_write(tmp_path / "a", users=lambda u: "a 1" if u == 2 else f"a{u}"))


def test_an_llm_method_reads_titles_through_string_item_ids(registry, tmp_path):
    folder = _write(tmp_path / "str", users=lambda u: f"A{u:04d}", items=lambda i: f"B{i:05d}")
    request = RunRequest(method="tallrec", dataset=str(folder), backbone="tiny-llama", out=tmp_path / "runs",
                         cache_dir=str(tmp_path / "cache"),
                         options={"max_steps": "2", "eval_every": "2", "batch_size": "8", "valid_rows": "12"})
    result = run(request, registry=registry, progress=lambda m: None)
    assert read_predictions(result.run_dir)["item"].str.startswith("B").all()
    assert pd.notna(result.record["metrics"]["overall"]["auc"])
