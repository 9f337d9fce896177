"""Rewrite committed records' ``dependencies`` from identity scheme 1 (module fingerprints) to
scheme 2 (definition digests, ``collm_bench.cache.identity``), once, without recomputing anything.

A record is migrated only when scheme 1 says it is current at BASE, the last commit before the
scheme changed: every module it recorded has, at BASE, the code digest it recorded, and every
library has the version it recorded (the ones installed here). Its scheme-2 dependencies are then
those the current tree gives the same components, which is sound because the commit that brings
scheme 2 changes no code that computes a number (it moves predictions I/O out of
``collm_bench.records.store``, marks plumbing, and changes how identity is recorded). Every other record
keeps its scheme-1 block and so reads as stale, as it did.

    python scripts/migrate_identity.py BASE leaderboards/runs [--made-at COMMIT] [--dry-run]

With ``--made-at``, scheme-2 records written by COMMIT's code (before a refinement of scheme 2
itself, e.g. how module statements count) are rewritten too when COMMIT's code calls them current.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where a module of scheme 1's records lives in the repository
PREFIXES = {"collm_bench_plugins": "plugins", "collm_bench_llara": "examples/collm-bench-llara/collm_bench_llara",
            "collm_bench_popularity": "examples/collm-bench-popularity/collm_bench_popularity"}


def scheme1_digest(source: bytes) -> str:
    """Scheme 1's ``code_digest``: the syntax tree without docstrings."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def source_at(base: str, module: str) -> bytes | None:
    top, _, rest = module.partition(".")
    if top in PREFIXES:
        stem = PREFIXES[top] + (("/" + rest.replace(".", "/")) if rest else "")
        if top != "collm_bench_plugins":   # a flat example module: collm_bench_llara_run
            stem = PREFIXES[top]
    elif top.startswith(("collm_bench_llara", "collm_bench_popularity")):   # an example's other modules
        stem = f"examples/collm-bench-{top.split('_')[2]}/{top}"
    else:
        stem = module.replace(".", "/")
    for path in (f"{stem}.py", f"{stem}/__init__.py"):
        proc = subprocess.run(["git", "-C", str(ROOT), "show", f"{base}:{path}"], capture_output=True)
        if proc.returncode == 0:
            return proc.stdout
    return None


def current_at_base(base: str, recorded: dict, cache: dict) -> list[str]:
    from collm_bench.cache.identity import library_versions

    reasons = []
    for module, digest in sorted((recorded.get("modules") or {}).items()):
        if module not in cache:
            source = source_at(base, module)
            cache[module] = scheme1_digest(source) if source is not None else None
        if cache[module] != digest:
            reasons.append(f"{module} {'removed' if cache[module] is None else 'changed'}")
    libraries = library_versions()
    for lib, version in sorted((recorded.get("libraries") or {}).items()):
        if libraries.get(lib) != version:
            reasons.append(f"{lib} {version} -> {libraries.get(lib)}")
    return reasons


def dependencies_now(record: dict, registry) -> dict:
    from collm_bench.cache.identity import dependencies
    from collm_bench.records.store import record_components, record_roots

    parts = record_components(registry, record["method"], record.get("encoder"), record.get("backbone"))
    return {**dependencies(*record_roots(registry, parts)), "components": [list(p) for p in parts]}


def current_at_commit(commit: str, records: list[Path]) -> dict[str, list[str]]:
    """The stale reasons of each of ``records`` under the code of ``commit``: one worktree of
    it, imported first in one subprocess (its package and built-in plugins)."""
    import tempfile

    if not records:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        tree, path = Path(tmp) / "tree", Path(tmp) / "path"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), commit], check=True)
        try:
            path.mkdir()
            (path / "collm_bench").symlink_to(tree / "collm_bench")
            (path / "collm_bench_plugins").symlink_to(tree / "plugins")
            probe = ("import json, sys; from collm_bench.records import read_record; "
                     "print(json.dumps({p: read_record(p).stale_reasons() for p in sys.argv[1:]}))")
            # run inside ``path``: ``python -c`` puts the working directory first on sys.path, and
            # a checkout there (the caller's) would shadow the commit's code
            proc = subprocess.run([sys.executable, "-c", probe, *(str(r.parent) for r in records)],
                                  capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(path)},
                                  cwd=path, check=True)
            return json.loads(proc.stdout)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("runs", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--made-at", metavar="COMMIT",
                        help="also rewrite scheme-2 records that the code of COMMIT calls current (records "
                             "computed by that commit, whose computing code is unchanged since: its golden runs "
                             "equal today's)")
    args = parser.parse_args(argv)
    args.runs = args.runs.resolve()   # the check runs in another directory
    from collm_bench.api.registry import get_registry
    from collm_bench.cache.identity import SCHEME

    registry = get_registry()
    cache: dict = {}
    migrated = kept = 0
    paths = sorted(args.runs.rglob("record.json"))
    records = {path: json.loads(path.read_text()) for path in paths}
    now = {path: dependencies_now(record, registry) for path, record in records.items()
           if (record.get("dependencies") or {}).get("scheme") == SCHEME}
    stale_now = [path for path in now if args.made_at and now[path] != records[path]["dependencies"]]
    at_commit = current_at_commit(args.made_at, stale_now) if stale_now else {}
    for path, record in records.items():
        recorded = record.get("dependencies") or {}
        if path in now and path not in stale_now:
            continue
        if path in now:
            where, reasons = args.made_at, at_commit[str(path.parent)]
        else:
            where, reasons = args.base, current_at_base(args.base, recorded, cache)
        if reasons:
            kept += 1
            print(f"kept (stale at {where}): {path.parent.relative_to(args.runs)}: {reasons[0]}"
                  + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""))
            continue
        record["dependencies"] = now[path] if path in now else dependencies_now(record, registry)
        migrated += 1
        if not args.dry_run:
            path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{migrated} migrated, {kept} kept as they were (stale)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
