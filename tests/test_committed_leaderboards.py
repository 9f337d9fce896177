"""CI drift check: every committed leaderboard equals what its committed records produce."""
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from collm_bench.reporting.leaderboard import render
from collm_bench.records.store import iter_records

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
# board file -> (records folder, paper table number or None for the plain leaderboard), from the
# list the refresh job reads too
BOARDS = {b["file"]: (b["runs"], b.get("table")) for b in tomllib.loads((ROOT / "boards.toml").read_text())["board"]}


def _expected(runs: str, table: int | None) -> str:
    if table is None:
        return render(ROOT / runs, "md")
    from collm_bench.reporting.paper_tables import render_tables

    return render_tables(table, (r for _, r in iter_records(ROOT / runs)), "md", None)


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_committed_leaderboard_matches_its_records(board):
    runs, table = BOARDS[board]
    if not (ROOT / board).exists():
        pytest.fail(f"leaderboards/{board} is missing")
    how = f"--table {table} " if table else ""
    assert (ROOT / board).read_text() == _expected(runs, table), (
        f"leaderboards/{board} is stale: regenerate it with "
        f"collm-bench leaderboard --runs leaderboards/{runs} {how}--output leaderboards/{board}")


def test_every_committed_record_has_a_leaderboard():
    record_dirs = {p.parent.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("runs/*/*/record.json")}
    assert record_dirs <= {runs for runs, _ in BOARDS.values()}


SPEC = tomllib.loads((ROOT / "boards.toml").read_text())
STUDIES = {b["runs"] for b in SPEC["board"] if b.get("study")}


def test_stale_committed_records_are_counted_in_one_line():
    """A warning, not a failure: a board record whose code changed since it was made should be
    regenerated. One line, with the command that lists them; the recipe studies' records are
    evidence of a decision, stale by design, and only counted."""
    import warnings

    from collm_bench.api.registry import get_registry

    registry = get_registry()
    stale, studies = [], 0
    for runs in sorted({runs for runs, _ in BOARDS.values()}):  # a folder behind several tables once
        for run_dir, record in iter_records(ROOT / runs, report=lambda message: None):
            if record.stale_reasons(registry):
                if runs in STUDIES:
                    studies += 1
                else:
                    stale.append(run_dir.relative_to(ROOT).as_posix())
    if stale:
        suites = sorted({b["suite"] for b in SPEC["board"] if any(r.startswith(b["runs"] + "/") for r in stale)})
        warnings.warn(f"{len(stale)} committed board records are stale (and {studies} study records, by design): "
                      f"collm-bench suite leaderboards/FILE --stale --dry-run lists them with the reasons, FILE one "
                      f"of {', '.join(suites)}", stacklevel=1)


PAGES = {p["file"]: p for p in tomllib.loads((ROOT / "boards.toml").read_text()).get("page", [])}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_committed_page_matches_its_records(page):
    import importlib.util

    entry = PAGES[page]
    spec = importlib.util.spec_from_file_location(Path(entry["script"]).stem, ROOT.parent / entry["script"])
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected = script.render([ROOT / runs for runs in entry["runs"]])
    assert (ROOT / page).read_text() == expected, (
        f"leaderboards/{page} is stale: regenerate it with python {entry['script']} "
        + " ".join(f"leaderboards/{runs}" for runs in entry["runs"]) + f" --output leaderboards/{page}")


NUMBER = __import__("re").compile(r"(?<![\d.\w])([+-]?(?:0)?\.\d{4})(?![\d])")
PROSE = [Path(__file__).resolve().parents[1] / "README.md", *sorted(ROOT.rglob("README.md"))]


def _supported_texts() -> str:
    pages = [p for p in ROOT.rglob("*.md") if p.name != "README.md"]
    return "\n".join(p.read_text() for p in pages) + "\n".join(p.read_text() for p in ROOT.glob("runs/*/*/record.json"))


@pytest.mark.parametrize("prose", PROSE, ids=lambda p: p.relative_to(ROOT.parent).as_posix())
def test_every_number_in_the_prose_comes_from_a_board_or_a_record(prose):
    """A four-decimal number written in a README (an AUC, a difference) must appear in a committed
    board, study page or record (records keep six decimals: the number is their prefix), or be
    the difference of two numbers of its own paragraph that do. A number no record supports
    fails: prose cannot drift from the records unseen."""
    support = _supported_texts()

    def found(number: str) -> bool:
        core = number.lstrip("+-")
        core = "0" + core if core.startswith(".") else core
        return core in support or core[1:] in support

    unsupported = []
    for paragraph in prose.read_text().split("\n\n"):
        numbers = NUMBER.findall(paragraph)
        known = [float(n.lstrip("+")) for n in numbers if found(n)]
        for number in numbers:
            if found(number):
                continue
            value = abs(float(number))
            if not any(abs(abs(a - b) - value) < 1.5e-4 for a in known for b in known):
                unsupported.append(number)
    assert not unsupported, f"{prose.name}: numbers no board or record supports: {', '.join(unsupported)}"
