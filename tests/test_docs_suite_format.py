"""docs/suite-format.md against the code, so that the reference page cannot drift.

- The key tables (``<!-- keys: NAME -->`` before a Markdown table) list exactly the keys the
  parser accepts, read from ``collm_bench.suites.file`` (and the options of ``collm-bench
  suite``, read from the typer app); each documented key is accepted by ``read_suite`` and a
  key the page does not document is refused.
- The ``[suite]`` table's defaults are what ``read_suite`` gives a file without ``[suite]``.
- Every ```toml block is written to a folder as ``suite.toml``, read and expanded with the
  installed plugins; a block after ``<!-- invalid -->`` must fail with the error the
  following ```text block quotes (``...``: any text).
- Every ``collm-bench suite`` command of a ```bash block uses existing options (and, for a
  committed suite file, existing entry names).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
from pathlib import Path
from typing import NamedTuple

import pytest

from collm_bench.errors import UserError
from collm_bench.suites import file as suite_file
from collm_bench.suites.file import read_suite
from collm_bench.suites.plan import MAX_CELLS, Overrides, expand

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "suite-format.md"
TEXT = PAGE.read_text()
KEY_TABLES = {"top": suite_file.TOP_KEYS, "suite": suite_file.SUITE_KEYS, "entry": suite_file.ENTRY_KEYS}
MARKER = re.compile(r"<!--\s*(.*?)\s*-->")


class Block(NamedTuple):
    lang: str
    body: str
    line: int                 # 1-based line of the opening fence
    marker: str | None        # the HTML comment on the line just above the fence (blank lines skipped)


def _blocks(text: str) -> list[Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.fullmatch(above.strip())
        blocks.append(Block(fence.group(1), "\n".join(lines[i + 1:end]) + "\n", i + 1,
                            marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = _blocks(TEXT)


class Example(NamedTuple):
    block: Block
    error: str | None         # the quoted error of an invalid example, without "error: "
    dataset_folder: str | None


def _examples() -> list[Example]:
    out = []
    for index, block in enumerate(BLOCKS):
        if block.lang != "toml":
            continue
        error = folder = None
        if block.marker == "invalid":
            following = BLOCKS[index + 1] if index + 1 < len(BLOCKS) else None
            assert following is not None and following.lang == "text", \
                f"{PAGE.name}:{block.line}: an invalid example is followed by a ```text block quoting its error"
            quoted = following.body.strip()
            assert quoted.startswith("error: ") and "\n" not in quoted, \
                f"{PAGE.name}:{following.line}: quote the error as one line starting with 'error: '"
            error = quoted[len("error: "):]
        elif block.marker is not None and block.marker.startswith("dataset-folder:"):
            folder = block.marker.split(":", 1)[1].strip()
        elif block.marker is not None:
            raise AssertionError(f"{PAGE.name}:{block.line}: unknown marker <!-- {block.marker} --> before a "
                                 "toml block (known: invalid, dataset-folder: PATH)")
        out.append(Example(block, error, folder))
    return out


EXAMPLES = _examples()


def _table(name: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the Markdown table after ``<!-- keys: name -->``; cells stripped."""
    lines = TEXT.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"<!-- keys: {name} -->"]
    assert len(starts) == 1, f"{PAGE.name}: expected one <!-- keys: {name} --> marker, found {len(starts)}"
    rows = []
    for line in lines[starts[0] + 1:]:
        if not line.strip() and not rows:
            continue
        if not line.lstrip().startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert len(rows) > 2 and set(rows[1][0]) <= set("-: "), f"{PAGE.name}: no table after <!-- keys: {name} -->"
    return [h.lower() for h in rows[0]], rows[2:]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _documented(name: str) -> list[str]:
    _, rows = _table(name)
    return [key for row in rows for key in _code(row[0])]


def _suite_command():
    import typer.main

    from collm_bench.cli import app

    return typer.main.get_command(app).commands["suite"]


def _suite_options() -> set[str]:
    # typer may vendor its own click: tell options from arguments by click's own label
    return {opt for p in _suite_command().params if p.param_type_name == "option" for opt in p.opts
            if opt.startswith("--")}


@pytest.fixture(scope="module")
def registry():
    from collm_bench.api.registry import load_registry

    return load_registry()


# --- the key tables -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(KEY_TABLES))
def test_key_tables_list_exactly_the_keys_the_parser_accepts(name):
    documented = _documented(name)
    known = KEY_TABLES[name]
    assert len(documented) == len(set(documented)), f"a key is documented twice in <!-- keys: {name} -->"
    assert not set(known) - set(documented), f"undocumented {name} keys: {sorted(set(known) - set(documented))}"
    assert not set(documented) - set(known), f"documented {name} keys the parser refuses: " \
                                             f"{sorted(set(documented) - set(known))}"


def _probe(name: str, key: str) -> str:
    """A suite file whose ``name`` table holds ``key`` (its value may be refused, not the key)."""
    entry = '[[entry]]\nmethod = "mf"\n'
    if name == "top":
        return ("" if key == "entry" else f"[{key}]\n") + entry
    if name == "suite":
        return f"[suite]\n{key} = 1\n" + entry
    return f"[[entry]]\n{key} = 1\n" + ("" if key in ("method", "methods") else 'method = "mf"\n')


@pytest.mark.parametrize("name", sorted(KEY_TABLES))
def test_documented_keys_are_accepted_and_others_refused(name, tmp_path):
    """The constants are what the parser checks against: each documented key passes the key
    check (its value may still be refused), and a key the page does not list is refused."""
    path = tmp_path / "suite.toml"
    for key in _documented(name) + ["not_a_documented_key"]:
        path.write_text(_probe(name, key))
        try:
            read_suite(path)
            message = ""
        except UserError as exc:
            message = str(exc)
        unknown = f"unknown key {key!r}" in message
        assert unknown == (key == "not_a_documented_key"), f"{name} key {key!r}: {message or 'accepted'}"


def test_axes_table_is_the_parsers_axes():
    header, rows = _table("axes")
    assert header[:2] == ["plural", "singular"] and "in `[suite]`" in header and "command line" in header
    in_suite, command_line = header.index("in `[suite]`"), header.index("command line")
    assert {(_code(r[0])[0], _code(r[1])[0]) for r in rows} == set(suite_file.AXES.items())
    assert len(rows) == len(suite_file.AXES)
    overridden = {f.name for f in dataclasses.fields(Overrides)}
    options = _suite_options()
    for row in rows:
        plural, single = _code(row[0])[0], _code(row[1])[0]
        assert row[in_suite] in ("yes", "no") and (row[in_suite] == "yes") == (plural in suite_file.SUITE_KEYS), plural
        flags = _code(row[command_line])
        if plural in overridden:
            assert flags == [f"--{single}"] and flags[0] in options, plural
        else:
            assert row[command_line] == "no", plural


def test_cli_table_lists_exactly_the_options_of_suite():
    documented = _documented("cli")
    assert len(documented) == len(set(documented))
    assert set(documented) == _suite_options()


def test_suite_defaults_are_the_parsers(tmp_path):
    header, rows = _table("suite")
    column = header.index("default")
    path = tmp_path / "suite.toml"
    path.write_text('[[entry]]\nmethod = "mf"\n')
    suite = read_suite(path)
    actual = {"description": suite.description, "out": os.path.relpath(suite.out, tmp_path),
              "full_test": suite.full_test, "sample_test": suite.sample_test, "table": suite.table}
    for plural, single in suite_file.AXES.items():
        actual[plural] = actual[single] = list(suite.axes[plural]) if plural in suite.axes else None
    for row in rows:
        cell = row[column]
        literals = _code(cell)
        assert cell == "none" or (len(literals) == 1 and cell == f"`{literals[0]}`"), \
            f"[suite] default {cell!r}: write one TOML value in backticks, or none"
        value = tomllib.loads(f"v = {literals[0]}")["v"] if literals else None
        for key in _code(row[0]):
            assert key in actual, f"[suite] key {key!r}: teach this test where read_suite keeps it"
            assert actual[key] == value, f"[suite] {key}: the page says {cell}, read_suite gives {actual[key]!r}"


def test_limits_quoted_on_the_page_are_the_codes():
    sizes = re.findall(r"(?i)\bover ([\d,]+) runs", TEXT)
    assert sizes and set(sizes) == {f"{MAX_CELLS:,}"}
    assert "`MAX_CELLS`" in TEXT
    _, rows = _table("suite")
    table_row = next(r for r in rows if _code(r[0]) == ["table"])
    assert f"{min(suite_file.TABLES)} to {max(suite_file.TABLES)}" in table_row[1]
    for key in suite_file.COMMAND_LINE_ONLY:   # each has an example the parser refuses
        assert any(e.error and key in e.block.body and key in e.error for e in EXAMPLES), key


# --- the examples ---------------------------------------------------------------------------------

def test_the_page_has_examples_of_both_kinds():
    assert sum(e.error is None for e in EXAMPLES) >= 5 and sum(e.error is not None for e in EXAMPLES) >= 5


def _quoted(pattern: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("...")), re.S)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.block.line}" for e in EXAMPLES])
def test_toml_examples_read_and_expand_or_fail_as_quoted(example, registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)            # errors then name the file as the page does: suite.toml
    Path("suite.toml").write_text(example.block.body)
    if example.dataset_folder:
        from collm_bench.testing import tiny_dataset

        tiny_dataset(tmp_path / example.dataset_folder)

    def load():
        return expand(read_suite("suite.toml"), registry)

    if example.error is None:
        assert load()
        return
    with pytest.raises(UserError) as err:
        load()
    assert _quoted(example.error).fullmatch(str(err.value)), \
        f"{PAGE.name}:{example.block.line}: the page quotes\n  {example.error}\nthe code says\n  {err.value}"


def test_suite_commands_on_the_page_exist():
    options = _suite_options()
    commands = [line for block in BLOCKS if block.lang == "bash" for line in block.body.splitlines()
                if "collm-bench suite " in line]
    assert commands
    for line in commands:
        words = shlex.split(line, comments=True)
        args = words[words.index("suite") + 1:]
        for word in args:
            if word.startswith("--"):
                assert word in options, f"{line!r}: collm-bench suite has no option {word}"
        path = ROOT / args[0]
        if args[0].startswith("leaderboards/"):
            assert path.is_file(), line
            names = {e.name for e in read_suite(path).entries}
            entries = [args[i + 1] for i, word in enumerate(args) if word == "--entry"]
            assert set(entries) <= names, f"{line!r}: no such entry in {args[0]}"


def test_resources_table_is_the_parsers_resources():
    header, rows = _table("resources")
    assert header[:2] == ["key", "type"]
    documented = {_code(r[0])[0]: r[1] for r in rows}
    assert set(documented) == set(suite_file.RESOURCES) and len(rows) == len(suite_file.RESOURCES)
    for key, (kind, least) in suite_file.RESOURCES.items():
        if least is not None:
            assert f">= {least:g}" in documented[key], key
        else:
            assert documented[key] == "name", key
