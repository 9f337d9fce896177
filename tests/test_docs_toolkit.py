"""``docs/toolkit.md`` against the code, so that the reference cannot drift.

Every name of ``collm_bench.llmrec.__all__`` has an entry and every documented name exists;
every one-line ``python`` block is a signature equal to ``inspect.signature``'s; the tables of
constants, presets, option fields, dataclass fields, attributes, stage metadata keys, record
timings and board columns are the code's; the examples run; pydoc lists the lazy names.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import pydoc
import re
import textwrap
import types
from pathlib import Path

import pytest

import collm_bench.llmrec as llmrec
import collm_bench.testing as testing

DOC = Path(__file__).resolve().parents[1] / "docs" / "toolkit.md"
SIGNATURE = re.compile(r"^([A-Za-z_][\w.]*)(\(.*)$")
DATACLASS_TABLES = ("LLMOptions", "CoLLMOptions", "MethodContext", "MethodOutput", "MethodSpec")


# -- reading the page -------------------------------------------------------------------------------

def _sections() -> list[tuple[str, str]]:
    """(heading, body) in page order; a ``#`` line inside a code block is no heading."""
    out, heading, body, fenced = [], "", [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            out.append((heading, "\n".join(body)))
            heading, body = line.lstrip("#").strip(), []
        else:
            body.append(line)
    out.append((heading, "\n".join(body)))
    return out


def _section(heading: str) -> str:
    bodies = [body for h, body in _sections() if h == heading]
    assert len(bodies) == 1, f"docs/toolkit.md: expected one section {heading!r}, found {len(bodies)}"
    return bodies[0]


def _tables(body: str) -> list[list[list[str]]]:
    """Each Markdown table as rows of cells (header first, separator dropped, ``\\|`` unescaped)."""
    tables, rows = [], []
    for line in body.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _table(heading: str, first: str) -> list[list[str]]:
    """The rows (without header) of the table of section ``heading`` whose first header is ``first``."""
    found = [t for t in _tables(_section(heading)) if t[0][0] == first]
    assert len(found) == 1, f"docs/toolkit.md, {heading!r}: expected one table headed {first!r}"
    return found[0][1:]


def _code(cell: str) -> str:
    return cell[1:-1] if len(cell) > 1 and cell[0] == cell[-1] == "`" else cell


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def _signature_blocks() -> list[tuple[str, str]]:
    """(name, signature) of every one-line python block."""
    out = []
    for block in _blocks():
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) == 1:
            match = SIGNATURE.match(lines[0])
            assert match, f"a one-line python block must be a signature: {lines[0]!r}"
            out.append((match.group(1), match.group(2)))
    return out


def _heading_names() -> list[str]:
    return [h[1:-1] for h, _ in _sections() if re.fullmatch(r"`[A-Za-z_][\w.]*`", h)]


def _constant_rows() -> dict[str, str]:
    rows = {}
    for _, body in _sections():
        for table in _tables(body):
            if table[0][0] == "constant":
                rows.update({_code(r[0]): _code(r[1]) for r in table[1:]})
    return rows


# -- the code -------------------------------------------------------------------------------------

def _namespace() -> dict[str, object]:
    from collm_bench import MethodSpec
    from collm_bench.api.methods import MethodContext, MethodOutput
    from collm_bench.llm.prompts import Prompts

    names = {n: getattr(llmrec, n) for n in llmrec.__all__}
    names.update({n: getattr(testing, n) for n in testing.__all__})
    names.update(MethodContext=MethodContext, MethodOutput=MethodOutput, MethodSpec=MethodSpec, Prompts=Prompts)
    return names


def _resolve(dotted: str) -> object:
    head, *rest = dotted.split(".")
    names = _namespace()
    assert head in names, f"docs/toolkit.md documents {dotted}, which is no public name"
    obj = names[head]
    for part in rest:
        assert hasattr(obj, part), f"docs/toolkit.md documents {dotted}, which does not exist"
        obj = getattr(obj, part)
    return obj


def _signature(obj: object) -> str:
    """``inspect.signature``; a method taken from its class without ``self``."""
    sig = inspect.signature(obj)
    params = list(sig.parameters.values())
    if inspect.isfunction(obj) and params and params[0].name == "self":
        sig = sig.replace(parameters=params[1:])
    return str(sig)


def _default_cell(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f.default.__name__ if callable(f.default) else repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "required"


def _self_attributes(cls: type) -> set[str]:
    """The ``self.<name>`` that ``cls.__init__`` assigns."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    targets = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AnnAssign):
            targets.append(node.target)
    found = set()
    for target in targets:
        for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                found.add(t.attr)
    return found


def _dict_keys(node: ast.Dict) -> list[str]:
    return [k.value for k in node.keys if isinstance(k, ast.Constant)]


# -- the checks -----------------------------------------------------------------------------------

def test_every_public_name_of_the_toolkit_has_an_entry_and_every_documented_name_exists():
    documented = set(_heading_names()) | set(_constant_rows())
    missing = [n for n in llmrec.__all__ if n not in documented]
    assert not missing, f"docs/toolkit.md has no entry for {missing}"
    for name in _heading_names() + [n for n, _ in _signature_blocks()]:
        _resolve(name)
    unknown = [n for n in _constant_rows() if n not in llmrec.__all__]
    assert not unknown, f"docs/toolkit.md lists constants the toolkit does not export: {unknown}"


def test_every_signature_is_the_code_s():
    blocks = _signature_blocks()
    for name, shown in blocks:
        assert shown == _signature(_resolve(name)), f"docs/toolkit.md: the signature of {name} is not the code's"
    assert len({n for n, _ in blocks}) == len(blocks), "a name has two signature blocks"
    signed = {n for n, _ in blocks}
    callables = [n for n in _heading_names() if callable(_resolve(n)) and n not in DATACLASS_TABLES]
    assert set(callables) <= signed, f"no signature shown for {sorted(set(callables) - signed)}"
    for cls in (llmrec.LLMRun, llmrec.PromptMaker, llmrec.CIE):
        public = {f"{cls.__name__}.{n}" for n, v in vars(cls).items()
                  if inspect.isfunction(v) and not n.startswith("_")}
        assert public <= signed, f"docs/toolkit.md does not document {sorted(public - signed)}"


def test_constants_and_the_options_in_each_group():
    from collm_bench.cache.options import option_groups

    groups = option_groups(llmrec.CoLLMOptions)
    for name, value in _constant_rows().items():
        assert value == repr(getattr(llmrec, name)), f"docs/toolkit.md: {name} is {getattr(llmrec, name)!r}"
    for row in _table("Option groups", "constant"):
        value = getattr(llmrec, _code(row[0]))
        if isinstance(value, str):
            members = {option for option, named in groups.items() if value in named}
            assert set(_names(row[2])) == members, f"docs/toolkit.md: the options of group {value!r}"


def test_presets_table():
    rows = _table("`PRESETS`", "option")
    header = next(t[0] for t in _tables(_section("`PRESETS`")) if t[0][0] == "option")
    assert header[1:] == list(llmrec.PRESETS)
    keys = list(dict.fromkeys(k for values in llmrec.PRESETS.values() for k in values))
    assert [_code(r[0]) for r in rows] == keys
    for row in rows:
        for preset, cell in zip(llmrec.PRESETS, row[1:]):
            assert _code(cell) == repr(llmrec.PRESETS[preset][_code(row[0])]), f"PRESETS[{preset!r}] {row[0]}"


@pytest.mark.parametrize("cls, base", [(llmrec.LLMOptions, None), (llmrec.CoLLMOptions, llmrec.LLMOptions)])
def test_option_tables(cls, base):
    from collm_bench.cache.options import option_groups

    inherited = {f.name for f in dataclasses.fields(base)} if base else set()
    fields = [f for f in dataclasses.fields(cls) if f.name not in inherited]
    groups = option_groups(cls)
    rows = _table(f"`{cls.__name__}`", "option")
    assert [_code(r[0]) for r in rows] == [f.name for f in fields], f"the fields of {cls.__name__}"
    for row, f in zip(rows, fields):
        assert _code(row[1]) == f.type and _code(row[2]) == repr(f.default), f"{cls.__name__}.{f.name}"
        shown = () if row[3] == "none" else tuple(g.strip() for g in row[3].split(","))
        assert shown == groups[f.name], f"the groups of {cls.__name__}.{f.name}"


@pytest.mark.parametrize("name", ["MethodContext", "MethodOutput", "MethodSpec"])
def test_dataclass_tables(name):
    cls = _resolve(name)
    fields = dataclasses.fields(cls)
    first = "attribute" if name == "MethodContext" else "field"
    rows = _table(f"`{name}`", first)
    assert [_code(r[0]) for r in rows] == [f.name for f in fields], f"the fields of {name}"
    for row, f in zip(rows, fields):
        assert (_code(row[1]), _code(row[2])) == (f.type, _default_cell(f)), f"{name}.{f.name}"


def test_where_each_method_output_field_goes():
    from collm_bench.api.methods import MethodOutput

    rows = _table("`MethodOutput`", "`MethodOutput` field")
    assert [_code(r[0]) for r in rows] == [f.name for f in dataclasses.fields(MethodOutput)]


@pytest.mark.parametrize("cls, heading", [(llmrec.PromptMaker, "PromptMaker's attributes"),
                                          (llmrec.LLMRun, "LLMRun's attributes")])
def test_attributes(cls, heading):
    documented = [_code(r[0]) for r in _table(heading, "attribute")]
    assert sorted(documented) == sorted(_self_attributes(cls)), f"the attributes {cls.__name__}.__init__ sets"


def test_stage_metadata_that_reaches_a_record():
    from collm_bench.cache.stages import StageResult
    from collm_bench.llm.tuning import TuneResult
    from collm_bench.records import store

    # stage_summary keeps the documented keys, and only those
    documented = [_code(r[0]) for r in _table("Stage metadata in a record", "kept key")]
    meta = {k: 1 for k in documented if k not in ("key", "cached")}
    meta.update(rows=3, best_step=2, anything_else=0)
    kept = llmrec.stage_summary(StageResult("s", "k", Path("."), meta, False))
    assert sorted(kept) == sorted(documented)

    # tune_meta's keys
    result = TuneResult(best_step=1, best_valid_auc=0.5, steps_run=2)
    assert sorted(llmrec.tune_meta(result)) == sorted(_code(r[0]) for r in _table("`tune_meta`", "tune_meta key"))

    # LLMRun.scores' metadata: the dict its compute returns
    tree = ast.parse(textwrap.dedent(inspect.getsource(llmrec.LLMRun.scores)))
    compute = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "compute")
    returned = next(n.value for n in ast.walk(compute) if isinstance(n, ast.Return))
    sentence = re.search(r"Its metadata: ([^.]*)\.", _section("LLMRun's methods")).group(1)
    assert _dict_keys(returned) == _names(sentence)

    # the record's timings
    tree = ast.parse(inspect.getsource(store.write_run))
    record = next(n for n in ast.walk(tree) if isinstance(n, ast.Dict) and "timings" in _dict_keys(n))
    timings = next(v for k, v in zip(record.keys, record.values) if isinstance(k, ast.Constant) and k.value == "timings")
    assert _dict_keys(timings) == [_code(r[0]) for r in _table("Record timings", "timings field")]


def test_board_columns():
    from collm_bench.reporting import leaderboard

    tree = ast.parse(textwrap.dedent(inspect.getsource(leaderboard.collect)))
    built = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript)
                and isinstance(node.value, ast.ListComp) and isinstance(node.value.elt, ast.Call)
                and getattr(node.value.elt.func, "attr", None) == "timing"):
            built[node.targets[0].slice.value] = node.value.elt.args[0].value
    documented = {_code(r[0]): _code(r[1]) for r in _table("Board columns", "board column")}
    assert documented == built
    assert set(documented) <= set(leaderboard.TAIL)


def test_the_conformance_kit_is_documented():
    documented = [n for n in _heading_names() if n in testing.__all__]
    assert sorted(documented) == sorted(testing.__all__)
    from collm_bench.testing import pytest_plugin

    assert "`collm_tiny_dataset`" in DOC.read_text() and hasattr(pytest_plugin, "collm_tiny_dataset")


def test_pydoc_lists_the_lazy_names():
    text = pydoc.plain(pydoc.render_doc(llmrec))
    assert re.search(r"^\s*class LLMRun\b", text, re.M), "pydoc does not list LLMRun"
    assert re.search(r"^\s*class PromptMaker\b", text, re.M), "pydoc does not list PromptMaker"
    assert re.search(r"^\s*train_prompts\(", text, re.M), "pydoc does not list train_prompts"


def test_the_examples_compile_and_the_zero_slot_maker_runs(tmp_path):
    from collm_bench.data.interactions import build_interactions

    examples = [b for b in _blocks() if len([line for line in b.splitlines() if line.strip()]) > 1]
    for block in examples:
        compile(block, "docs/toolkit.md", "exec")
    maker_code = next(b for b in examples if "class PopularityMaker" in b)
    scope: dict = {}
    exec(compile(maker_code, "docs/toolkit.md", "exec"), scope)
    dataset = testing.tiny_dataset(tmp_path / "tiny")
    data = build_interactions(dataset)
    backbone = types.SimpleNamespace(placeholder_token="<unk>")
    maker = scope["PopularityMaker"](data, dataset.items, dataset.item_noun, backbone, 3)
    rows = data.rows("test")[:5]
    prompts = maker.prompts(rows, with_ids=True)
    assert prompts.spans.shape == (5, 0) and all("users liked this movie. #Question:" in t for t in prompts.texts)
