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
    public = set(collm_bench.PUBLIC_MODULES)
    for path in (ROOT / "plugins").rglob("*.py"):
        for module, name in _imports(path):
            if not module.startswith("collm_bench") or module.startswith("collm_bench_plugins"):
                continue
            assert module in public, f"{path} imports non-public module {module}"
            assert not (name or "").startswith("_"), f"{path} imports private name {module}.{name}"


def test_core_files_stay_small():
    for path in (ROOT / "collm_bench").rglob("*.py"):
        assert len(path.read_text().splitlines()) < 600, f"{path} is over 600 lines: split it"


def test_every_hook_and_public_name_is_documented_for_plugin_authors():
    import collm_bench
    from collm_bench import hookspecs

    doc = (Path(__file__).resolve().parents[1] / "docs" / "writing-plugins.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    missing = [f"hook {h}" for h in hooks if f"`{h}(" not in doc]
    missing += [f"module {m}" for m in collm_bench.PUBLIC_MODULES if f"`{m}`" not in doc]
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
