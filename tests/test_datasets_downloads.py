"""collm_bench.data.downloads without the network: file:// URLs, local zips, a stubbed pip."""
import hashlib
import subprocess
import zipfile

import pytest

from collm_bench import DataError, UserError
from collm_bench.data import downloads
def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_download_checks_digests_and_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    url = src.as_uri()
    dest = tmp_path / "cache" / "file.bin"
    assert downloads.download(url, dest, sha256=sha(b"payload"), md5=hashlib.md5(b"payload").hexdigest()) == dest
    assert dest.read_bytes() == b"payload"
    src.unlink()
    assert downloads.download(url, dest, sha256=sha(b"payload")) == dest  # cached: no fetch
    other = tmp_path / "other.bin"
    other.write_bytes(b"something else")
    with pytest.raises(UserError, match="sha256 is .*expected"):
        downloads.download(other.as_uri(), tmp_path / "cache" / "bad.bin", sha256=sha(b"payload"))
    with pytest.raises(UserError, match="md5 is .*expected"):
        downloads.download(other.as_uri(), tmp_path / "cache" / "bad.bin", md5="0" * 32)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["file.bin"]  # no partial file


def test_download_failure_is_one_line_with_the_hint(tmp_path):
    with pytest.raises(UserError) as err:
        downloads.download((tmp_path / "missing.zip").as_uri(), tmp_path / "x.zip",
                           hint="pass its path with --source")
    message = str(err.value)
    assert message.startswith("could not download file://") and message.endswith("pass its path with --source")
    assert "\n" not in message
    assert not (tmp_path / "x.zip").exists()


def make_wheel(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extract_member(tmp_path):
    wheel = make_wheel(tmp_path / "pkg-1.0-py3-none-any.whl", {"pkg/data/a.txt": b"abc"})
    out = downloads.extract_member(wheel, "pkg/data/a.txt", tmp_path / "a.txt", sha256=sha(b"abc"))
    assert out.read_bytes() == b"abc"
    with pytest.raises(DataError, match=r"pkg-1\.0-py3-none-any\.whl: has no member 'pkg/b.txt'"):
        downloads.extract_member(wheel, "pkg/b.txt", tmp_path / "b.txt")
    with pytest.raises(DataError, match="member 'pkg/data/a.txt' has sha256"):
        downloads.extract_member(wheel, "pkg/data/a.txt", tmp_path / "c.txt", sha256="0" * 64)
    assert not (tmp_path / "c.txt").exists()
    (tmp_path / "broken.whl").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="not a readable zip file"):
        downloads.extract_member(tmp_path / "broken.whl", "x", tmp_path / "d.txt")


def test_fetch_wheel_member_runs_pip_download_once(tmp_path, monkeypatch):
    calls = []
    wheel_bytes = {}

    def fake_run(cmd, capture_output, text, timeout):
        calls.append(cmd)
        target = cmd[cmd.index("-d") + 1]
        wheel = make_wheel(tmp_path / "built.whl", {"recbole/x/ml.inter": b"rows"})
        wheel_bytes["data"] = wheel.read_bytes()
        (tmp_path / "built.whl").rename(f"{target}/recbole-1.2.1-py3-none-any.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(downloads.subprocess, "run", fake_run)
    cache = tmp_path / "cache"
    out = downloads.fetch_wheel_member("recbole==1.2.1", "recbole/x/ml.inter", cache / "ml.inter",
                                       cache_dir=cache, member_sha256=sha(b"rows"))
    assert out.read_bytes() == b"rows"
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and cmd[-1] == "recbole==1.2.1"
    # the wheel is cached: another member needs no second pip call
    (cache / "ml.inter").unlink()
    downloads.fetch_wheel_member("recbole==1.2.1", "recbole/x/ml.inter", cache / "ml.inter", cache_dir=cache,
                                 wheel_sha256=sha(wheel_bytes["data"]))
    assert len(calls) == 1


def test_pip_failures_are_clear(tmp_path, monkeypatch):
    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for nothing==9\n")

    monkeypatch.setattr(downloads.subprocess, "run", failing)
    with pytest.raises(UserError, match="pip download nothing==9 failed: ERROR: No matching distribution"):
        downloads.pip_download("nothing==9", tmp_path)

    def wrong_wheel(cmd, **kwargs):
        make_wheel(tmp_path / "w.whl", {"a": b"b"}).rename(f"{cmd[cmd.index('-d') + 1]}/pkg-1-py3-none-any.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(downloads.subprocess, "run", wrong_wheel)
    with pytest.raises(UserError, match="wheel sha256 is .*expected " + "0" * 64):
        downloads.pip_download("pkg==1", tmp_path / "c", sha256="0" * 64)
    assert not list((tmp_path / "c").glob("*.whl"))
