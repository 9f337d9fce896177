"""The core never imports the built-in plugins; plugins use only the public API."""
import ast
from pathlib import Path

import collm_bench

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


def test_core_does_not_import_plugins():
    for path in (ROOT / "collm_bench").rglob("*.py"):
        for module, _ in _imports(path):
            assert not module.startswith("collm_bench_plugins"), f"{path} imports {module}"


def test_plugins_import_only_public_api():
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "examples").rglob("*.py")]:
        for module, name in _imports(path):
            if module.split(".")[0] != "collm_bench":
                continue
            assert not any(part.startswith("_") for part in module.split(".")), f"{path} imports private {module}"
            assert not (name or "").startswith("_"), f"{path} imports private name {module}.{name}"


def test_core_files_stay_small():
    for path in (ROOT / "collm_bench").rglob("*.py"):
        assert len(path.read_text().splitlines()) < 600, f"{path} is over 600 lines: split it"


def test_every_hook_and_public_name_is_documented_for_plugin_authors():
    import collm_bench
    from collm_bench.api import hookspecs
    doc = (Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    missing = [f"hook {h}" for h in hooks if f"`{h}(" not in doc]
    missing += [f"package collm_bench.{p}" for p in collm_bench.PUBLIC_PACKAGES if f"`collm_bench.{p}" not in doc]
    missing += [f"name {n}" for n in collm_bench.__all__ if f"`{n}`" not in doc]
    assert not missing, f"docs/writing-plugins.md does not document: {', '.join(missing)}"


def test_every_package_is_in_the_wheel():
    """An editable install finds any package; a wheel holds only those pyproject.toml lists."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    found = {".".join(("collm_bench_plugins" if d == "plugins" else d, *rest)).rstrip(".")
             for path in [*(ROOT / "collm_bench").rglob("__init__.py"), *(ROOT / "plugins").rglob("__init__.py")]
             for d, *rest in [path.parent.relative_to(ROOT).parts]}
    assert found == listed, f"pyproject.toml packages: missing {sorted(found - listed)}, extra {sorted(listed - found)}"


def test_the_core_never_imports_the_toolkit_built_on_it():
    """collm_bench.llmrec is built on the core (scorer, prompts, tuning, stages); the core
    knows nothing of it, so that the layers read bottom-up."""
    for path in (ROOT / "collm_bench").rglob("*.py"):
        if "llmrec" in path.parts or "testing" in path.parts:
            continue
        for module, _ in _imports(path):
            assert not module.startswith("collm_bench.llmrec"), f"{path} imports {module}"


def test_each_public_package_reexports_the_public_names_of_its_modules():
    import importlib

    for package in collm_bench.PUBLIC_PACKAGES:
        if package in ("llmrec", "testing"):   # curated by hand: the toolkit's and the kit's API
            continue
        module = importlib.import_module(f"collm_bench.{package}")
        for path in (ROOT / "collm_bench" / package).glob("[!_]*.py"):
            tree = ast.parse(path.read_text())
            names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            missing = {n for n in names if not n.startswith("_")} - set(module.__all__)
            assert not missing, f"collm_bench.{package} does not re-export {sorted(missing)} of {path.name}"


def test_pydoc_and_dir_list_the_lazy_public_names():
    """Lazy loading keeps imports light; dir() and pydoc still show a plugin author every name."""
    import importlib
    import pydoc

    for package in ("llmrec", "api", "records"):
        module = importlib.import_module(f"collm_bench.{package}")
        assert set(module.__all__) <= set(dir(module))
        text = pydoc.render_doc(module, renderer=pydoc.plaintext)
        missing = [name for name in module.__all__ if name not in text]
        assert not missing, f"pydoc collm_bench.{package} does not show {missing}"
