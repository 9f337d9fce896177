import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

import collm_bench.api.registry as plugins_mod
from collm_bench import DatasetSpec, EncoderSpec, UserError, hookimpl
from collm_bench.api.registry import load_registry
from collm_bench.testing.fakes import DotOptions


Opts = DotOptions  # an encoder's options with every training field


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


def _failure_of(plugin) -> str:
    registry = load_registry([("author", plugin)], entry_points=False)
    (failure,) = registry.failures
    assert failure.plugin == "author" and not registry.all()
    return failure.error


@dataclass
class NoDefault:
    lr: float


@dataclass(frozen=True)
class Untyped(DotOptions):
    layers: list = None


@pytest.mark.parametrize("spec, says", [
    (EncoderSpec(name="e", build=lambda **kw: None, options=dict, description="x"), "options must be a dataclass type"),
    (EncoderSpec(name="e", build=lambda **kw: None, options=NoDefault, description="x"), "option 'lr' has no default"),
    (EncoderSpec(name="e", build=lambda **kw: None, options=Untyped, description="x"), "option 'layers' has type"),
    (EncoderSpec(name="e", build=lambda **kw: None, options=Opts, description="x", model_fields=("depth",)),
     "model_fields names depth"),
    (EncoderSpec(name="e", build="not callable", options=Opts, description="x"), "build must be callable"),
    (DatasetSpec(name="d", prepare=lambda t, s: None, description="x", protocol=1), "protocol must be a string"),
])
def test_a_bad_spec_is_refused_at_registration_naming_plugin_and_component(spec, says):
    class Author:
        @hookimpl
        def register_encoders(self, register):
            if isinstance(spec, EncoderSpec):
                register(spec)

        @hookimpl
        def register_datasets(self, register):
            if isinstance(spec, DatasetSpec):
                register(spec)

    error = _failure_of(Author())
    assert error.startswith("failed to register: TypeError:") and says in error
    assert f"'{spec.name}'" in error  # names the component


def test_a_missing_training_field_is_refused():
    @dataclass(frozen=True)
    class Partial:
        lr: float = 0.1

    class Author:
        @hookimpl
        def register_encoders(self, register):
            register(EncoderSpec(name="e", build=lambda **kw: None, options=Partial, description="x"))

    assert "lack the training field(s) weight_decay, batch_size" in _failure_of(Author())


def test_system_exit_at_import_or_in_a_hook_is_contained(tmp_path, monkeypatch):
    class ExitsInHook:
        @hookimpl
        def register_encoders(self, register):
            raise SystemExit(3)

    assert "failed to register: SystemExit: 3" in _failure_of(ExitsInHook())
    (tmp_path / "exits_at_import.py").write_text("raise SystemExit('bye')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry([("exits", "exits_at_import")], entry_points=False)
    (failure,) = registry.failures
    assert failure.plugin == "exits" and failure.error == "failed to load: SystemExit: bye"


def test_a_hook_without_hookimpl_is_reported():
    class Forgot:
        def register_encoders(self, register):  # no @hookimpl: pluggy would ignore it
            register(_encoder("lost"))

    assert "register_encoders not marked with @collm_bench.hookimpl" in _failure_of(Forgot())


def test_an_unknown_name_mentions_plugins_that_failed():
    class Broken:
        @hookimpl
        def register_encoders(self, register):
            raise RuntimeError("boom")

    registry = load_registry([("broken-author", Broken())], entry_points=False)
    with pytest.raises(UserError, match="plugins that failed to load: broken-author"):
        registry.get("encoder", "theirs")


def test_plugins_command_warns_about_a_slow_or_torch_importing_plugin(cli, monkeypatch):
    registry = load_registry(entry_points=False)
    registry.imports["heavy"] = (2.5, True)
    monkeypatch.setattr(plugins_mod, "_REGISTRY", registry)
    code, _, err = cli(["plugins"])
    assert code == 0 and "plugin heavy took 2.50 s to import and imported torch" in err


def test_a_plugin_cannot_replace_or_shadow_a_command(cli, monkeypatch):
    """A plugin adds commands; one naming a built-in command, or another plugin's, adds none and
    is reported like a component clash, and the built-in keeps working."""
    from collm_bench import cli as cli_module
    from collm_bench.api.registry import get_registry, set_registry

    class Hijacker:
        @hookimpl
        def register_commands(self, app):
            @app.command("extra-ok")
            def fine():
                print("added")

            @app.command()
            def run():   # the built-in `collm-bench run`
                print("hijacked")

    class First:
        @hookimpl
        def register_commands(self, app):
            @app.command("hello")
            def hello():
                print("first")

    class Second:
        @hookimpl
        def register_commands(self, app):
            @app.command("hello")
            def hello_again():
                print("second")

    previous = get_registry()
    monkeypatch.setattr(cli_module.app, "registered_commands", list(cli_module.app.registered_commands))
    monkeypatch.setattr(cli_module.app, "registered_groups", list(cli_module.app.registered_groups))
    set_registry(load_registry([("hijacker", Hijacker()), ("first", First()), ("second", Second())],
                               entry_points=False))
    try:
        code, out, err = cli(["run", "--help"])
        assert code == 0 and "hijacked" not in out and "Train and evaluate a method" in out
        code, out, _ = cli(["hello"])
        assert code == 0 and out.strip() == "first"
        code, _, err = cli(["extra-ok"])
        assert code != 0 and "No such command 'extra-ok'" in err   # the hijacker added nothing at all
        failures = {f.plugin: f.error for f in get_registry().failures}
        assert "command 'run' is taken" in failures["hijacker"] and "command 'hello' is taken" in failures["second"]
        code, out, _ = cli(["plugins"])
        assert "hijacker" in out and "command 'run' is taken" in out
    finally:
        set_registry(previous)


def test_an_installed_plugin_passed_in_extra_too_is_loaded_once():
    """The docs' test pattern, load_registry([(name, module)]), keeps working once the plugin is
    installed: the same module is one plugin, not a name clash."""
    import importlib

    from collm_bench.api.registry import load_registry

    module = importlib.import_module("collm_bench_plugins.methods.binllm")   # installed as 'binllm'
    registry = load_registry([("binllm", module)])
    assert not registry.failures and "binllm" in registry.plugins
    other = importlib.import_module("collm_bench_plugins.methods.rella")
    clash = load_registry([("binllm", other)])
    assert "plugin name clash: 'binllm'" in str(clash.failures)
