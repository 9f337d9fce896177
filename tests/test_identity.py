"""What a result's code is (``collm_bench.cache.identity``): the definitions it reaches, by content.

Both directions, on a small plugin here and on a copy of the whole package: a pure refactor (a
move, a rename, a split, a merge, comments, docstrings, layout, import order, any edit of
plumbing) keeps every stage key and record identity; a change that can move a number stales it.
"""
import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from collm_bench.cache.identity import changes, code_units, digest

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "myplug.py": '''
        """A plugin."""
        from myplug_model import SCALE, Model
        from myplug_report import show

        def build(x):
            import numpy as np
            model = Model()
            show(model)
            return np.float32(model.forward(x) * SCALE)
    ''',
    "myplug_model.py": '''
        from myplug_util import helper

        SCALE = 2.0

        class Model:
            def forward(self, x):
                return helper(x) + 1
    ''',
    "myplug_util.py": '''
        def helper(x):
            return x * 3

        def unused(x):
            return x - 1
    ''',
    "myplug_report.py": '''
        __identity__ = "plumbing"
        __guards__ = ("check",)

        def show(model):
            print("model", model)

        def check(x):
            if x is None:
                raise ValueError("no x")
    ''',
}


def _units(tmp_path, monkeypatch, files: dict[str, str | None], name: str) -> dict[str, str]:
    """``code_units("myplug")`` of BASE with ``files`` replaced (None: removed), in a folder of its own."""
    folder = tmp_path / name
    folder.mkdir()
    for file, text in {**BASE, **files}.items():
        if text is not None:
            (folder / file).write_text(textwrap.dedent(text))
    with monkeypatch.context() as m:
        m.syspath_prepend(str(folder))
        return code_units("myplug")


PURE = {
    "comments, docstrings and layout": {"myplug_model.py": '''
        """The model."""
        # why it is so
        from myplug_util import (
            helper)
        SCALE = 2.0   # the scale
        class Model:
            """A docstring."""
            def forward(self, x):
                return (helper(x)
                        + 1)
    '''},
    "a module import instead of a name import": {"myplug_model.py": '''
        import myplug_util

        SCALE = 2.0

        class Model:
            def forward(self, x):
                return myplug_util.helper(x) + 1
    '''},
    "a function renamed with its callers": {
        "myplug_util.py": "def triple(x):\n    return x * 3\n\ndef unused(x):\n    return x - 1\n",
        "myplug_model.py": BASE["myplug_model.py"].replace("helper", "triple")},
    "a function moved into another module": {
        "myplug_util.py": "def unused(x):\n    return x - 1\n",
        "myplug_model.py": '''
            SCALE = 2.0

            def helper(x):
                return x * 3

            class Model:
                def forward(self, x):
                    return helper(x) + 1
        '''},
    "a module renamed": {"myplug_util.py": None, "myplug_ops.py": BASE["myplug_util.py"],
                         "myplug_model.py": BASE["myplug_model.py"].replace("myplug_util", "myplug_ops")},
    "a file split in two": {
        "myplug_model.py": "from myplug_model_class import Model\nfrom myplug_model_scale import SCALE\n",
        "myplug_model_class.py": "from myplug_util import helper\n\nclass Model:\n"
                                 "    def forward(self, x):\n        return helper(x) + 1\n",
        "myplug_model_scale.py": "SCALE = 2.0\n"},
    "two files merged": {
        "myplug_util.py": None,
        "myplug_model.py": "SCALE = 2.0\n\ndef helper(x):\n    return x * 3\n\ndef unused(x):\n    return x - 1\n\n"
                           "class Model:\n    def forward(self, x):\n        return helper(x) + 1\n"},
    "an unreached function edited": {"myplug_util.py": BASE["myplug_util.py"].replace("x - 1", "x - 2")},
    "a guard called": {"myplug.py": BASE["myplug.py"].replace(
        "import show", "import check, show").replace("    model = Model()", "    check(x)\n            model = Model()")},
    "plumbing edited and renamed": {
        "myplug_report.py": '__identity__ = "plumbing"\n\ndef display(model):\n    print("the model:", model)\n',
        "myplug.py": BASE["myplug.py"].replace("show", "display")},
}

NUMERIC = {
    "a constant": {"myplug_model.py": BASE["myplug_model.py"].replace("2.0", "3.0")},
    "a function two modules away": {"myplug_util.py": BASE["myplug_util.py"].replace("x * 3", "x * 4")},
    "a method": {"myplug_model.py": BASE["myplug_model.py"].replace("+ 1", "+ 2")},
    "which function is called": {"myplug_model.py": BASE["myplug_model.py"].replace(
        "helper(x) + 1", "unused(x) + 1").replace("import helper", "import unused")},
    "a library call": {"myplug.py": BASE["myplug.py"].replace("float32", "float64")},
    "a module-level statement": {"myplug_util.py": textwrap.dedent(BASE["myplug_util.py"]) + "\nprint('loaded')\n"},
    "a guard's value used": {"myplug.py": BASE["myplug.py"].replace(
        "import show", "import check, show").replace("    model = Model()", "    x = check(x) or x\n            model = Model()")},
    "a guard called on a call's value": {"myplug.py": BASE["myplug.py"].replace(
        "import show", "import check, show").replace("    model = Model()", "    check(x.pop())\n            model = Model()")},
    "a plumbing call that is no guard": {"myplug.py": BASE["myplug.py"].replace(
        "show(model)", "show(model)\n            show(x)")},
    "a string": {"myplug_report.py": None, "myplug.py": BASE["myplug.py"].replace(
        "from myplug_report import show", "show = print").replace("show(model)", "show('the model')")},
}


@pytest.mark.parametrize("change", sorted(PURE))
def test_a_pure_refactor_keeps_the_identity(tmp_path, monkeypatch, change):
    before = _units(tmp_path, monkeypatch, {}, "before")
    after = _units(tmp_path, monkeypatch, PURE[change], "after")
    assert digest(after) == digest(before), changes({"definitions": before}, {"definitions": after})


@pytest.mark.parametrize("change", sorted(NUMERIC))
def test_a_change_that_can_move_a_number_stales_it(tmp_path, monkeypatch, change):
    before = _units(tmp_path, monkeypatch, {}, "before")
    after = _units(tmp_path, monkeypatch, NUMERIC[change], "after")
    assert digest(after) != digest(before)
    assert changes({"definitions": before}, {"definitions": after})   # and says what


def test_a_guard_whose_refusal_could_be_caught_counts(tmp_path, monkeypatch):
    """In a try (or with) block, a guard's refusal may become another result: its call counts."""
    def build(body):
        return BASE["myplug.py"].replace("import show", "import check, show").replace(
            "    model = Model()", "    " + textwrap.indent(body, " " * 12).lstrip() + "\n            model = Model()")
    caught = "try:\n    check(x)\nexcept ValueError:\n    x = 0"
    with_call = _units(tmp_path, monkeypatch, {"myplug.py": build(caught)}, "with")
    without = _units(tmp_path, monkeypatch, {"myplug.py": build(caught.replace("check(x)", "pass"))}, "without")
    assert digest(with_call) != digest(without)


def test_what_is_followed_and_what_is_not(tmp_path, monkeypatch):
    labels = set(_units(tmp_path, monkeypatch, {}, "base").values())
    assert {"myplug:build", "myplug_model:Model", "myplug_model:SCALE", "myplug_util:helper"} <= labels
    assert "myplug_util:unused" not in labels                       # never named
    assert not any(label.startswith(("myplug_report", "numpy")) for label in labels)   # plumbing, a library


def test_a_module_used_as_a_value_counts_whole(tmp_path, monkeypatch):
    """``getattr(module, name)`` cannot be followed: every definition of the module counts."""
    dynamic = {"myplug_model.py": BASE["myplug_model.py"].replace("from myplug_util import helper", "import myplug_util")
               .replace("helper(x)", "getattr(myplug_util, 'helper')(x)")}
    before = _units(tmp_path, monkeypatch, dynamic, "before")
    assert "myplug_util:unused" in before.values()
    after = _units(tmp_path, monkeypatch, {**dynamic, **NUMERIC["a function two modules away"],
                                           "myplug_util.py": BASE["myplug_util.py"].replace("x - 1", "x - 2")}, "after")
    assert digest(after) != digest(before)


def test_a_star_import_brings_the_whole_module(tmp_path, monkeypatch):
    star = {"myplug_model.py": BASE["myplug_model.py"].replace("from myplug_util import helper",
                                                               "from myplug_util import *")}
    before = _units(tmp_path, monkeypatch, star, "before")
    assert "myplug_util:helper" in before.values()
    after = _units(tmp_path, monkeypatch, {**star, **NUMERIC["a function two modules away"]}, "after")
    assert digest(after) != digest(before)


def test_nothing_is_imported_to_find_the_definitions():
    sys.modules.pop("collm_bench.llm.scorer", None)
    labels = set(code_units("collm_bench.llmrec.run").values())
    assert "collm_bench.llm.scorer:LLMScorer" in labels                    # through imports inside functions
    assert any(label.startswith("collm_bench.llmrec.training:") for label in labels)
    assert "collm_bench.llm.scorer" not in sys.modules


def test_stages_of_other_components_do_not_depend_on_each_other():
    encoder = set(code_units("collm_bench.encoders.stage", "collm_bench_plugins.encoders.mf").values())
    assert not any(label.startswith(("collm_bench.llm.scorer:", "collm_bench.llm.prompts:")) for label in encoder)
    assert any(label.startswith("collm_bench_plugins.encoders.mf_model:") for label in encoder)
    llm = set(code_units("collm_bench.llmrec.run", "collm_bench_plugins.methods.collm").values())
    assert any(label.startswith("collm_bench_plugins.methods.llm_runs:") for label in llm)
    assert not any(label.startswith("collm_bench.reporting.leaderboard") for label in llm)


def test_library_versions_are_named_in_changes():
    old = {"definitions": {"a": "m:f"}, "libraries": {"torch": "2.12.0"}}
    new = {"definitions": {"a": "m:f"}, "libraries": {"torch": "2.13.0"}}
    assert changes(old, new) == ["torch 2.12.0 -> 2.13.0"]


# -- the declared boundary -----------------------------------------------------------------------

PLUMBING = {"_util._env_checks", "_util.devices", "cache._evaluation_memo", "cache._identity_store", "_util.lazy", "_util.paths", "_util.strict_json", "api.registry", "progress", "cache._dirs", "cache._local_weights", "cache._checkpoint_checks", "cache._sources", "cache.admin",
            "cache.identity", "cache.stages", "cli", "data._checks", "data.summary", "errors", "llm._checks", "records.record", "records.rescore",
            "records.store", "api.loggers", "reporting.tracking",
            "reporting.html", "reporting.leaderboard", "reporting.paper_figures", "reporting.paper_tables",
            "suites.cluster", "suites.file", "suites.jobs", "suites._worker", "suites.plan"}
NUMERICAL = ("numpy", "torch", "pandas", "sklearn", "scipy", "transformers", "peft", "safetensors")


def _plumbing_modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "collm_bench").rglob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["__identity__"]
               and getattr(n.value, "value", None) == "plumbing" for n in tree.body):
            found[path.relative_to(ROOT / "collm_bench").with_suffix("").as_posix().replace("/", ".")] = path
    return found


def test_the_plumbing_modules_are_the_declared_ones():
    """Declaring a module plumbing takes it out of every result's identity: a reviewed choice."""
    assert set(_plumbing_modules()) == PLUMBING


MUTATING = {"append", "extend", "insert", "update", "pop", "popitem", "remove", "clear", "setdefault", "sort",
            "reverse", "add", "discard", "write", "write_text", "write_bytes", "unlink", "mkdir", "rename", "replace",
            "__setitem__", "fill_", "zero_", "copy_"}


def _guards() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for name, path in _plumbing_modules().items():
        tree = ast.parse(path.read_text())
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__guards__"]:
                for element in node.value.elts:
                    assert element.value in defs, f"{name}: guard {element.value!r} is no function of the module"
                    found.append((f"{name}:{element.value}", defs[element.value]))
    return found


@pytest.mark.parametrize("label, function", _guards(), ids=[label for label, _ in _guards()])
def test_a_guard_only_refuses(label, function):
    """A guard's call is left out of a result's identity: it must return nothing and change none
    of its arguments (no assignment into them, no mutating method called on them)."""
    params = {a.arg for a in function.args.args + function.args.kwonlyargs}
    for node in ast.walk(function):
        if isinstance(node, ast.Return):
            assert node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None), \
                f"{label} returns a value"
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                base = target
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                assert not (isinstance(base, ast.Name) and base.id in params and base is not target), \
                    f"{label} assigns into its argument {base.id!r}"
                assert not (isinstance(target, ast.Name) and target.id in params), f"{label} rebinds {target.id!r}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING:
            base = node.func.value
            while isinstance(base, (ast.Attribute, ast.Subscript)):
                base = base.value
            assert not (isinstance(base, ast.Name) and base.id in params), \
                f"{label} calls {node.func.attr} on its argument {base.id!r}"


def test_there_are_guards():
    assert _guards(), "the guard tests would pass vacuously"


@pytest.mark.parametrize("module", sorted(PLUMBING))
def test_plumbing_imports_no_numerical_library(module):
    """What computes numbers imports numpy or torch; plumbing moves results and so never does
    (a figure's matplotlib is drawing, not computing)."""
    tree = ast.parse(_plumbing_modules()[module].read_text())
    imported = {alias.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & set(NUMERICAL)


# -- both directions on a copy of the package ------------------------------------------------------

RECORD_ROOTS = ["collm_bench.runner", "collm_bench_plugins.methods.collm", "collm_bench_plugins.encoders.mf",
                "collm_bench_plugins.backbones.minilm", "collm_bench_plugins.metrics"]
STAGE_ROOTS = {"step1": ["collm_bench.llmrec.run", "collm_bench_plugins.backbones.minilm"],
               "encoder": ["collm_bench.encoders.stage", "collm_bench_plugins.encoders.mf"]}
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from collm_bench.cache.identity import code_units, digest
from collm_bench.cache.stages import code_identity
assert __import__("collm_bench").__file__.startswith(sys.argv[1])
print(json.dumps({"record": digest(code_units(*%r)),
                  "stages": {k: code_identity(*v)["definitions"] for k, v in %r.items()}}))
""" % (RECORD_ROOTS, STAGE_ROOTS)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    base = tmp_path_factory.mktemp("package")
    shutil.copytree(ROOT / "collm_bench", base / "collm_bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "plugins", base / "collm_bench_plugins", ignore=shutil.ignore_patterns("__pycache__"))
    return base


def _identities(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(folder)], capture_output=True, text=True, env=env,
                          cwd=folder, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _edit(folder: Path, path: str, old: str, new: str, count: int = 1) -> None:
    file = folder / path
    text = file.read_text()
    assert text.count(old) >= count, (path, old)
    file.write_text(text.replace(old, new, count))


def _sed(folder: Path, pattern: str, replacement: str) -> None:
    for file in folder.rglob("*.py"):
        text = file.read_text()
        changed = re.sub(pattern, replacement, text)
        if changed != text:
            file.write_text(changed)


def _rename_module(folder, old, new):
    """Rename module ``old`` (dotted, below collm_bench) to ``new`` and every reference to it."""
    source, target = (folder / "collm_bench" / f"{m.replace('.', '/')}.py" for m in (old, new))
    target.write_text(source.read_text())
    source.unlink()
    _sed(folder, rf"\bcollm_bench\.{re.escape(old)}\b", f"collm_bench.{new}")


def _move_function(folder, name, source, target):
    """Move top-level ``name`` from module ``source`` to ``target`` (both under collm_bench/),
    leaving a re-export behind, and point every ``from collm_bench.source import name`` there."""
    src, dst = (folder / "collm_bench" / f"{m.replace('.', '/')}.py" for m in (source, target))
    text = src.read_text()
    node = next(n for n in ast.parse(text).body if getattr(n, "name", None) == name)
    lines = text.splitlines(keepends=True)
    start = node.lineno - 1 - len(node.decorator_list)
    body = "".join(lines[start:node.end_lineno])
    src.write_text("".join(lines[:start] + lines[node.end_lineno:]) + f"\nfrom collm_bench.{target} import {name}  # noqa\n")
    dst.write_text(dst.read_text() + "\n\n" + body)


PACKAGE_PURE = {
    "comments and docstrings": lambda f: _edit(f, "collm_bench/llm/scorer.py", '"""', '"""Reworded. ', 1),
    "a module renamed": lambda f: _rename_module(f, "data.history", "data.user_history"),
    "a function renamed everywhere": lambda f: _sed(f, r"\badd_lora\b", "attach_lora"),
    "a function moved between modules": lambda f: _move_function(f, "derive_histories", "data.history",
                                                                 "data.interactions"),
    "the record writer edited": lambda f: _edit(f, "collm_bench/records/store.py", "def write_record(",
                                                "def write_record_unused():\n    return 1\n\n\ndef write_record("),
    "the stage cache's bookkeeping edited": lambda f: _edit(f, "collm_bench/cache/stages.py", "import time\n",
                                                            "import time\nPOLL_SECONDS = 7\n"),
    "progress output edited": lambda f: _sed(f, r"def say\(", "def say(*_unused, "),
}
PACKAGE_NUMERIC = {
    "a metric's code": ("record", lambda f: _sed(f, r"(\ndef auc\([^\n]*\n)", r"\1    _ = 1\n")),
    "a prompt's words": ("step1", lambda f: _edit(f, "collm_bench/llm/prompts.py", '"Yes" or "No"', '"yes" or "no"')),
    "an encoder's batching": ("encoder", lambda f: _edit(f, "collm_bench/encoders/training.py", "batch_size: int = 4096",
                                                        "batch_size: int = 2048")),
}


@pytest.mark.parametrize("change", sorted(PACKAGE_PURE))
def test_a_pure_refactor_of_the_package_keeps_records_and_stage_keys(package, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    before = _identities(package)
    PACKAGE_PURE[change](copy)
    assert _identities(copy) == before


@pytest.mark.parametrize("change", sorted(PACKAGE_NUMERIC))
def test_a_numeric_change_in_the_package_stales_what_it_touches(package, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    before = _identities(package)
    what, edit = PACKAGE_NUMERIC[change]
    edit(copy)
    after = _identities(copy)
    assert after != before
    touched = after["record"] != before["record"] if what == "record" else after["stages"][what] != before["stages"][what]
    assert touched


# -- definitions known by their output (BY_OUTPUT) --------------------------------------------------

STALE_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from collm_bench.cache.identity import dependencies, stale_reasons
assert __import__("collm_bench").__file__.startswith(sys.argv[1])
if sys.argv[2] == "record":
    print(json.dumps(dependencies(*%r)))
else:
    print(json.dumps(stale_reasons(json.load(open(sys.argv[2])), *%r)))
""" % (RECORD_ROOTS, RECORD_ROOTS)


def _probe_stale(folder: Path, arg: str):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", STALE_PROBE, str(folder), arg], capture_output=True, text=True,
                          env=env, cwd=folder, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


SAMPLER = "collm_bench/api/methods.py"
FRACTION = "fraction = sample_rows / len(test)"
WHOLE = "if sample_rows is None or sample_rows >= len(test):"


@pytest.mark.parametrize("edit, stale", [
    ("the sampler's own code", False),   # its rows are in the run's config: known by output
    ("a value the sampler names", True),  # what it names still counts (fail safe)
    ("the choice of the whole split", True),   # whose rows the config does not fix: not pinned
])
def test_the_sampler_is_known_by_its_output(package, tmp_path, edit, stale):
    recorded = tmp_path / "recorded.json"
    recorded.write_text(json.dumps(_probe_stale(package, "record")))
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    if edit == "the sampler's own code":
        _edit(copy, SAMPLER, FRACTION, "fraction = 1.0 * sample_rows / len(test)")
    elif edit == "the choice of the whole split":
        _edit(copy, SAMPLER, WHOLE, "if sample_rows is None or sample_rows > len(test):")
    else:
        _edit(copy, SAMPLER, "SAMPLE_SEED = 2023", "SAMPLE_SEED = 2024")
    reasons = _probe_stale(copy, str(recorded))
    assert bool(reasons) == stale, reasons
    # stage keys never pin (none reaches the sampler today: a plugin's stage that did would rerun)
    assert _identities(copy)["stages"] == _identities(package)["stages"]


def test_the_sampler_s_rows_are_in_the_run_id():
    """The other half of the bargain: a sampler that picks other rows gives another run id."""
    from collm_bench.api.methods import evaluation_rows
    from collm_bench.runner import _base_config, run_id_of

    class Data:
        user = np.repeat(np.arange(30), 4)
        label = np.tile([1, 1, 0, 0], 30)
        subset = np.array(["cold"] * 120)

        def rows(self, split):
            return np.arange(120)

    class Dataset:
        name, sha256 = "tiny", "0" * 64

    def run_id(seed):
        _, evaluation = evaluation_rows(Data(), 40, seed=seed)
        return run_id_of({**_base_config(Dataset(), 0, evaluation), "method": "mf"})

    assert run_id(1) == run_id(1) and run_id(1) != run_id(2)


# -- identities kept between processes (cache/_identity_store.py) ----------------------------------

def test_a_kept_identity_is_reused_only_while_every_module_it_read_is_as_it_was(tmp_path, monkeypatch):
    from collm_bench.cache import _identity_store, identity

    first = _units(tmp_path, monkeypatch, {}, "kept")
    stored = list(Path(os.environ["COLLM_BENCH_CACHE"]).glob(".identity/*.json"))
    assert len(stored) == 1

    def forget():   # as a new process: nothing in memory
        _identity_store._MEMO.clear()
        _identity_store._HASHED.clear()
        identity._GRAPHS.clear()

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again")

    folder = tmp_path / "kept"
    with monkeypatch.context() as m:
        forget()
        m.syspath_prepend(str(folder))
        m.setattr(identity, "_digests", no_parsing)
        assert code_units("myplug") == first                       # kept: nothing parsed
    # an edit that keeps size and mtime is still seen: the check is by content
    model = folder / "myplug_model.py"
    text, stat = model.read_text(), model.stat()
    model.write_text(text.replace("return helper(x) + 1", "return helper(x) + 2"))
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with monkeypatch.context() as m:
        forget()
        m.syspath_prepend(str(folder))
        changed = code_units("myplug")
    assert changed != first


def test_a_module_looked_up_and_missing_that_appears_is_seen(tmp_path, monkeypatch):
    from collm_bench.cache import _identity_store, identity

    folder = tmp_path / "appears"
    folder.mkdir()
    (folder / "optplug").mkdir()
    (folder / "optplug" / "__init__.py").write_text("SCALE = 2\n")
    (folder / "optplug" / "main.py").write_text(textwrap.dedent("""
        import optplug

        def run(x):
            return optplug.fast.kernel(x) + 1   # optplug.fast: looked up, not there (the whole package counts)
    """))

    def units():
        _identity_store._MEMO.clear()   # as a new process
        _identity_store._HASHED.clear()
        identity._GRAPHS.clear()
        identity.origin.cache_clear()
        importlib.invalidate_caches()
        with monkeypatch.context() as m:
            m.syspath_prepend(str(folder))
            return code_units("optplug.main")

    before = units()
    (folder / "optplug" / "fast.py").write_text("def kernel(x):\n    return 2 * x\n")
    after = units()
    assert after != before and "optplug.fast:kernel" in after.values()


def test_a_damaged_kept_identity_is_ignored(tmp_path, monkeypatch):
    from collm_bench.cache import _identity_store, identity

    first = _units(tmp_path, monkeypatch, {}, "damaged")
    for entry in Path(os.environ["COLLM_BENCH_CACHE"]).glob(".identity/*.json"):
        entry.write_text("{not json")
    _identity_store._MEMO.clear()
    _identity_store._HASHED.clear()
    identity._GRAPHS.clear()
    with monkeypatch.context() as m:
        m.syspath_prepend(str(tmp_path / "damaged"))
        assert code_units("myplug") == first
