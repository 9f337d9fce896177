import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

import collm_bench.plugins as plugins_mod
from collm_bench import DatasetSpec, EncoderSpec, UserError, hookimpl
from collm_bench.plugins import load_registry


@dataclass(frozen=True)
class Opts:
    lr: float = 0.1


def _encoder(name):
    return EncoderSpec(name=name, build=lambda **kw: None, options=Opts, description=f"{name} encoder")


class Good:
    @hookimpl
    def register_encoders(self, register):
        register(_encoder("popularity"))

    @hookimpl
    def register_datasets(self, register):
        register(DatasetSpec(name="toy", prepare=lambda target, source: None, description="toy"))


class RaisesInHook:
    @hookimpl
    def register_encoders(self, register):
        register(_encoder("half-registered"))
        raise RuntimeError("boom")


class Clashes:
    @hookimpl
    def register_encoders(self, register):
        register(_encoder("popularity"))


class UnknownHook:
    @hookimpl
    def register_widgets(self, register):
        pass


class WrongKind:
    @hookimpl
    def register_encoders(self, register):
        register(DatasetSpec(name="oops", prepare=lambda t, s: None, description=""))


def test_components_registered_with_plugin_names():
    reg = load_registry([("good", Good())], entry_points=False)
    entry = reg.entry("encoder", "popularity")
    assert entry.plugin == "good" and reg.names("dataset") == ["toy"]
    assert reg.failures == []


def test_broken_plugins_are_isolated_and_reported():
    reg = load_registry([("good", Good()), ("raises", RaisesInHook()), ("clash", Clashes()),
                         ("unknown", UnknownHook()), ("wrongkind", WrongKind())], entry_points=False)
    assert reg.names("encoder") == ["popularity"]
    assert reg.entry("encoder", "popularity").plugin == "good"
    errors = {f.plugin: f.error for f in reg.failures}
    assert set(errors) == {"raises", "clash", "unknown", "wrongkind"}
    assert "boom" in errors["raises"]
    assert "name clash" in errors["clash"] and "'good'" in errors["clash"]
    assert "register_widgets" in errors["unknown"]
    # nothing of a failed plugin stays registered
    assert "half-registered" not in reg.names("encoder")


def test_import_failure_is_reported(monkeypatch):
    class FakeEP:
        name = "broken"
        dist = None

        @staticmethod
        def load():
            raise ImportError("No module named 'missing_dep'")

    monkeypatch.setattr(plugins_mod, "_entry_points", lambda: [FakeEP()])
    reg = load_registry()
    assert reg.failures[0].plugin == "broken"
    assert "missing_dep" in reg.failures[0].error


def test_unknown_name_suggests_close_match():
    reg = load_registry([("good", Good())], entry_points=False)
    with pytest.raises(UserError, match="did you mean 'popularity'"):
        reg.get("encoder", "popularty")


def test_environment_switches(monkeypatch):
    monkeypatch.setenv("COLLM_BENCH_DISABLE_PLUGINS", "good")
    assert load_registry([("good", Good())], entry_points=False).names("encoder") == []
    monkeypatch.delenv("COLLM_BENCH_DISABLE_PLUGINS")
    monkeypatch.setenv("COLLM_BENCH_LOAD_PLUGINS", "other")
    assert load_registry([("good", Good())], entry_points=False).names("encoder") == []
    monkeypatch.setenv("COLLM_BENCH_LOAD_PLUGINS", "good")
    assert load_registry([("good", Good())], entry_points=False).names("encoder") == ["popularity"]


def test_trace_switch_prints_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("COLLM_BENCH_TRACE_PLUGINS", "1")
    load_registry([("good", Good())], entry_points=False)
    assert "good" in capsys.readouterr().err


def test_builtins_register_through_entry_points():
    reg = load_registry()
    for name in ("mf", "lightgcn", "sasrec", "din"):
        if name in reg.plugins:  # registered through the entry-point group, like any plugin
            assert reg.entry("encoder", name).plugin == name


def test_plugins_command_json_lists_components_and_imports_no_torch():
    code = (
        "import sys, json, io, contextlib\n"
        "from collm_bench.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try: main(['plugins', '--json'])\n"
        "    except SystemExit as e: assert not e.code, e.code\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print(json.dumps({'out': json.loads(buf.getvalue()), 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["heavy"] == []
    assert {"components", "failures"} <= set(payload["out"])
    for component in payload["out"]["components"]:
        assert {"kind", "name", "plugin", "version"} <= set(component)
