"""What a result's code is (``collm_bench.fingerprints``): the modules a stage or run can depend
on, followed through imports, so that an edit marks stale only what it can change."""
import sys
import textwrap

import pytest

from collm_bench.fingerprints import changes, module_fingerprints


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A plugin ``myplug`` with a model file, importing a piece of collm-bench inside a function."""
    (tmp_path / "myplug.py").write_text(textwrap.dedent("""
        from collm_bench.components import option

        def build():
            from myplug_model import Model
            import numpy
            return Model
    """))
    (tmp_path / "myplug_model.py").write_text("from collm_bench.metrics import auc\nclass Model: pass\n")
    (tmp_path / "unrelated.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_imports_are_followed_into_functions_and_plugin_files_not_into_libraries(tree):
    found = module_fingerprints("myplug")
    assert {"myplug", "myplug_model", "collm_bench.components", "collm_bench.metrics"} <= set(found)
    assert "numpy" not in found and "unrelated" not in found
    assert "collm_bench.llm" not in found and "collm_bench.leaderboard" not in found


def test_an_edit_changes_the_fingerprint_of_what_imports_it_only(tree):
    before = module_fingerprints("myplug")
    (tree / "myplug_model.py").write_text("from collm_bench.metrics import auc\nclass Model: x = 2\n")
    after = module_fingerprints("myplug")
    assert changes({"modules": before}, {"modules": after}) == ["myplug_model changed"]


def test_nothing_is_imported_to_find_the_files():
    sys.modules.pop("collm_bench.llm", None)
    found = module_fingerprints("collm_bench.llmrec.run")
    assert "collm_bench.llm" in found and "collm_bench.llmrec.training" in found  # the lazy table's modules
    assert "collm_bench.llm" not in sys.modules


def test_stages_of_other_components_do_not_depend_on_each_other():
    encoder = module_fingerprints("collm_bench.encoder_stage", "collm_bench_plugins.encoders.mf")
    assert "collm_bench.llm" not in encoder and "collm_bench.prompts" not in encoder
    assert "collm_bench_plugins.encoders.mf_model" in encoder
    llm = module_fingerprints("collm_bench.llmrec.run", "collm_bench_plugins.methods.collm")
    assert "collm_bench_plugins.methods.llm_runs" in llm and "collm_bench.leaderboard" not in llm


def test_library_versions_are_named_in_changes():
    old = {"modules": {"a": "1"}, "libraries": {"torch": "2.12.0"}}
    new = {"modules": {"a": "1"}, "libraries": {"torch": "2.13.0"}}
    assert changes(old, new) == ["torch 2.12.0 -> 2.13.0"]


def test_comments_docstrings_and_layout_are_not_code(tree):
    """A record stays current through an edit of its modules' comments, docstrings or line
    breaks; any change of code, a string constant included, marks it."""
    before = module_fingerprints("myplug")
    (tree / "myplug_model.py").write_text(
        '"""The model."""\n# why it is so\nfrom collm_bench.metrics import (\n    auc)\n'
        'class Model:\n    """A docstring."""\n    pass  # nothing yet\n')
    assert module_fingerprints("myplug") == before
    (tree / "myplug_model.py").write_text("from collm_bench.metrics import auc\nclass Model: name = 'x'\n")
    assert changes({"modules": before}, {"modules": module_fingerprints("myplug")}) == ["myplug_model changed"]
