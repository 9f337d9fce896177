"""The prepared format: round trip, reproducibility, and one clear DataError per malformed input."""
import gzip
import json
import os
import stat

import pandas as pd
import pytest

from collm_bench import DataError
from collm_bench.data.format import FORMAT, load_prepared, sha256_file, write_prepared

INTER = pd.DataFrame({
    "user": [1, 1, 2, 2, 3],
    "item": [10, 20, 10, 30, 20],
    "label": [1, 0, 1, 1, 0],
    "timestamp": [100, 200, 100, 300, 400],
    "split": ["train", "train", "valid", "test", "test"],
    "rating": [5, 2, 4, 5, 1],
    "valid_small": [0, 0, 1, 0, 0],
    "history": ["", "10", "", "10", ""],
})
ITEMS = pd.DataFrame({"item": [10, 20, 30], "title": ["Toy Story (1995)", "Heat, \"The\" (1995)", "Fargo (1996)"]})


def write(path, inter=INTER, items=ITEMS):
    return write_prepared(path, inter, items, name="tiny", protocol={"label": "x"}, item_noun="movie")


def rewrite_interactions(path, text, gz=True):
    """Replace interactions with ``text`` and refresh its sha256 in the manifest."""
    name = "interactions.csv.gz" if gz else "interactions.csv"
    if gz:
        (path / "interactions.csv.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (path / "interactions.csv.gz").unlink()
        (path / "interactions.csv").write_text(text)
    refresh(path, name)


def refresh(path, name):
    manifest = json.loads((path / "manifest.json").read_text())
    files = {k: v for k, v in manifest["files"].items() if (path / k).exists()}
    files[name] = sha256_file(path / name)
    manifest["files"] = files
    (path / "manifest.json").write_text(json.dumps(manifest))


def csv_of(frame):
    return frame.to_csv(index=False)


def test_round_trip(tmp_path):
    write(tmp_path)
    data = load_prepared(tmp_path)
    assert data.name == "tiny" and data.item_noun == "movie"
    assert data.manifest["format"] == FORMAT
    pd.testing.assert_frame_equal(data.interactions.drop(columns=["label", "valid_small"]),
                                  INTER.drop(columns=["label", "valid_small"]))
    assert list(data.interactions["label"]) == [1, 0, 1, 1, 0]
    assert list(data.items["title"]) == list(ITEMS["title"])
    assert data.manifest["counts"] == {"train": 2, "valid": 1, "test": 2, "valid_small": 1, "users": 3,
                                       "items": 3, "positive_rate": {"train": 0.5, "valid": 1.0, "test": 0.5}}


def test_writing_twice_gives_the_same_bytes_and_readable_files(tmp_path):
    write(tmp_path / "a")
    write(tmp_path / "b")
    assert load_prepared(tmp_path / "a").manifest["files"] == load_prepared(tmp_path / "b").manifest["files"]
    assert load_prepared(tmp_path / "a").sha256 == load_prepared(tmp_path / "b").sha256
    umask = os.umask(0)
    os.umask(umask)
    for name in ("interactions.csv.gz", "items.csv", "manifest.json"):
        mode = stat.S_IMODE((tmp_path / "a" / name).stat().st_mode)
        assert mode == 0o666 & ~umask, f"{name} has mode {oct(mode)}"


def test_plain_csv_interactions_are_accepted(tmp_path):
    write(tmp_path)
    rewrite_interactions(tmp_path, csv_of(INTER), gz=False)
    assert len(load_prepared(tmp_path).interactions) == 5


def test_optional_columns_may_be_absent(tmp_path):
    write(tmp_path, inter=INTER[["user", "item", "label", "timestamp", "split"]])
    data = load_prepared(tmp_path)
    assert list(data.interactions.columns) == ["user", "item", "label", "timestamp", "split"]


def malformed(**changes):
    frame = INTER.copy()
    for col, value in changes.items():
        if value is None:
            frame = frame.drop(columns=[col])
        else:
            frame[col] = value
    return csv_of(frame)


@pytest.mark.parametrize("text, problem", [
    (malformed(label=None), "missing required column(s): label"),
    (malformed(user=None, split=None), "missing required column(s): user, split"),
    (malformed(score=[1, 2, 3, 4, 5]), "unexpected column(s): score"),
    (malformed(label=[1, 0, 2, 1, 0]), "label must be 0 or 1, found 2 on data row 3"),
    (malformed(label=[1, 0, 1, "yes", 0]), "label must be 0 or 1, found 'yes' on data row 4"),
    (malformed(valid_small=[0, 0, 5, 0, 0]), "valid_small must be 0 or 1, found 5 on data row 3"),
    (malformed(timestamp=[100, 200, "noon", 300, 400]), "non-numeric timestamp 'noon' on data row 3"),
    (malformed(timestamp=[100, 200, "", 300, 400]), "missing timestamp on data row 3"),
    (malformed(timestamp=[100, 200, "inf", 300, 400]), "infinite timestamp inf on data row 3"),
    (malformed(timestamp=[100, "-inf", 200, 300, 400]), "infinite timestamp -inf on data row 2"),
    (malformed(rating=[4, 5, "", 3, 1]), "rating missing on data row 3 is not a finite number"),
    (malformed(rating=[4, 5, "four", 3, 1]), "rating 'four' on data row 3 is not a finite number"),
    (malformed(rating=[4, 5, "inf", 3, 1]), "rating inf on data row 3 is not a finite number"),
    (malformed(split=["train", "train", "validation", "test", "dev"]),
     "unknown split name(s) 'dev', 'validation'; expected train, valid, test"),
    (malformed(split=["train", "train", "", "test", "test"]), "missing split on data row 3"),
    (malformed(user=[1, 1, "u 2", 2, 3]), "user id 'u 2' on data row 3 contains whitespace"),
    (malformed(item=[10, 20, "", 30, 20]), "missing item id on data row 3"),
    (malformed(item=[10, 20, 10.5, 30, 20]), "item id '10.0' on data row 1 is a decimal number"),
    ("", "empty file"),
    ("user,item,label,timestamp,split\n", "no data rows"),
    ('user,item,label,timestamp,split\n1,10,1,100,train\n2,"20,1,100,train\n', "cannot parse as CSV"),
])
def test_malformed_interactions(tmp_path, text, problem):
    write(tmp_path)
    rewrite_interactions(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'interactions.csv.gz'}: ")
    assert problem in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_gzip(tmp_path):
    big = pd.concat([INTER] * 2000, ignore_index=True)
    write(tmp_path, inter=big)
    path = tmp_path / "interactions.csv.gz"
    path.write_bytes(path.read_bytes()[:-200])
    refresh(tmp_path, "interactions.csv.gz")
    with pytest.raises(DataError, match=r"interactions\.csv\.gz: truncated or corrupt file"):
        load_prepared(tmp_path)


def test_not_gzip_at_all(tmp_path):
    write(tmp_path)
    (tmp_path / "interactions.csv.gz").write_bytes(b"this is not gzip data")
    refresh(tmp_path, "interactions.csv.gz")
    with pytest.raises(DataError, match=r"interactions\.csv\.gz: truncated or corrupt file"):
        load_prepared(tmp_path)


@pytest.mark.parametrize("items, problem", [
    (pd.DataFrame({"item": [10, 20], "title": ["A (1990)", "B (1991)"]}),
     "1 interaction(s) have items without a title, e.g. item 30"),
    (pd.DataFrame({"item": [10, 20, 30], "title": ["A (1990)", "", "C (1992)"]}), "item 20 has an empty title"),
    (pd.DataFrame({"item": [10, 20, 30], "title": ["A (1990)", "   ", "C (1992)"]}), "item 20 has an empty title"),
    (pd.DataFrame({"item": [10, 20, 30, 10], "title": ["A", "B", "C", "D"]}), "duplicate item id 10"),
    (pd.DataFrame({"item": [1.5, 20, 30], "title": ["A", "B", "C"]}), "item id '1.5' on data row 1 is a decimal"),
    (pd.DataFrame({"item": [10, 20, 30]}), "missing required column(s): title"),
    (pd.DataFrame({"item": [10, 20, 30], "title": ["A", "B", "C"], "year": [1, 2, 3]}),
     "unexpected column(s): year"),
])
def test_malformed_items(tmp_path, items, problem):
    write(tmp_path)
    items.to_csv(tmp_path / "items.csv", index=False)
    refresh(tmp_path, "items.csv")
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'items.csv'}: {problem}")


def test_empty_items_file(tmp_path):
    write(tmp_path)
    (tmp_path / "items.csv").write_text("")
    refresh(tmp_path, "items.csv")
    with pytest.raises(DataError, match=r"items\.csv: empty file"):
        load_prepared(tmp_path)


@pytest.mark.parametrize("remove, problem", [
    ("manifest.json", "manifest.json: missing file"),
    ("items.csv", "items.csv: missing file"),
    ("interactions.csv.gz", "interactions.csv.gz: missing file (expected interactions.csv.gz or interactions.csv)"),
])
def test_missing_files(tmp_path, remove, problem):
    write(tmp_path)
    (tmp_path / remove).unlink()
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value) == f"{tmp_path}/{problem}"


def test_not_a_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory in the prepared format"):
        load_prepared(tmp_path / "nothing")


def test_file_listed_in_the_manifest_is_missing(tmp_path):
    write(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["extra.csv"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"extra\.csv: missing file \(listed in manifest\.json\)"):
        load_prepared(tmp_path)


@pytest.mark.parametrize("text, problem", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"format": "collm-bench-dataset/2"}', "format is 'collm-bench-dataset/2', expected 'collm-bench-dataset/1'"),
    (f'{{"format": "{FORMAT}", "files": ["a"]}}', "'files' must map file names to sha256 digests"),
])
def test_bad_manifest(tmp_path, text, problem):
    write(tmp_path)
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'manifest.json'}: ")
    assert problem in str(err.value)


@pytest.mark.parametrize("name", ["interactions.csv.gz", "items.csv"])
def test_sha256_mismatch_names_the_file(tmp_path, name):
    write(tmp_path)
    if name == "items.csv":
        ITEMS.iloc[::-1].to_csv(tmp_path / name, index=False)  # still valid, other bytes
    else:
        (tmp_path / name).write_bytes(gzip.compress(csv_of(INTER.iloc[::-1]).encode()))
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / name}: sha256 mismatch: manifest says ")
    load_prepared(tmp_path, verify=False)  # the content itself is valid


def test_the_real_release_loads(ml1m_collm):
    data = load_prepared(ml1m_collm)
    assert data.manifest["counts"]["train"] == 33_891


def test_manifest_must_list_both_files(tmp_path):
    import json

    from collm_bench.testing import tiny_dataset

    tiny_dataset(tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    del manifest["files"]["items.csv"]
    (tmp_path / "d" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="'files' lacks the sha256 of items.csv"):
        load_prepared(tmp_path / "d")


# -- files named by a manifest never leave their folder, and are regular files --------------------

def _list(path, name, digest="0" * 64):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][name] = digest
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname", "sub/../../x.csv", "a\\b.csv", ""])
def test_a_listed_file_outside_the_folder_is_refused_before_it_is_opened(tmp_path, name):
    write(tmp_path / "d")
    _list(tmp_path / "d", name, digest=sha256_file("/etc/hostname") if os.path.exists("/etc/hostname") else "0" * 64)
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path / "d")
    assert f"'files' lists {name!r}: a file is named by a relative path inside the dataset folder" in str(err.value)
    assert "sha256" not in str(err.value)   # nothing hashed, nothing echoed


@pytest.mark.parametrize("kind", ["directory", "fifo"])
@pytest.mark.parametrize("name", ["extra.csv", "items.csv", "manifest.json"])
def test_a_listed_or_fixed_file_that_is_no_regular_file_is_refused(tmp_path, kind, name):
    write(tmp_path)
    target = tmp_path / name
    if target.exists():
        manifest_text = (tmp_path / "manifest.json").read_text()
        target.unlink()
    if name == "extra.csv":
        _list(tmp_path, name)
    if kind == "directory":
        target.mkdir()
    else:
        os.mkfifo(target)   # reading it would hang
    if name == "manifest.json":
        pass
    elif not (tmp_path / "manifest.json").exists():
        (tmp_path / "manifest.json").write_text(manifest_text)
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{target}: ")
    assert f"is {'a directory' if kind == 'directory' else 'a FIFO'}, not a regular file" in str(err.value)


def test_a_symlink_to_a_regular_file_elsewhere_is_followed(tmp_path):
    write(tmp_path / "d")
    elsewhere = tmp_path / "big" / "items.csv"
    elsewhere.parent.mkdir()
    (tmp_path / "d" / "items.csv").rename(elsewhere)
    (tmp_path / "d" / "items.csv").symlink_to(elsewhere)
    assert len(load_prepared(tmp_path / "d").items) == 3   # the checksum protects the content


@pytest.mark.parametrize("field, value, problem", [
    ("files", {"items.csv": 12}, "the digest '12', not a sha256"),
    ("files", {"items.csv": "ABC"}, "the digest 'ABC', not a sha256"),
    ("sequence_len", -3, "sequence_len must be an integer from 0 to 10000 (history items), got -3"),
    ("sequence_len", 2.7, "got 2.7"),
    ("sequence_len", True, "got True"),
    ("sequence_len", "abc", "got 'abc'"),
    ("item_noun", {"x": 1}, "item_noun must be a short word"),
    ("item_noun", "", "item_noun must be a short word"),
])
def test_manifest_fields_that_reach_options_and_prompts_are_checked(tmp_path, field, value, problem):
    write(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest[field] = {**manifest["files"], **value} if field == "files" else value
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError) as err:
        load_prepared(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'manifest.json'}: ") and problem in str(err.value)
