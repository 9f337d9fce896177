"""collm-bench suite: validation before any run, member ordering, skip logic, --limit."""
import textwrap
from pathlib import Path

import pytest

import collm_bench_plugins.methods.ensemble as ensemble
from collm_bench import UserError
from collm_bench.api.registry import load_registry, set_registry
from collm_bench.records.store import read_record
from collm_bench.suites.plan import Runner, expand, select
from collm_bench.suites.file import read_suite
from collm_bench.testing import tiny_dataset
from collm_bench.testing.fakes import FakePlugin

# The ensemble is listed first: it must still run after its members.
SUITE = """
[suite]
out = "runs"
datasets = ["tiny"]
seeds = [0, 1]
full_test = true

[encoder_options.dot]
max_epochs = 2

[[entry]]
name = "both"
method = "ensemble"
members = ["dot4", "dot8"]

[[entry]]
name = "dot4"
method = "dot"
options = { dim = 4 }

[[entry]]
name = "dot8"
method = "dot"
options = { dim = 8 }
"""


@pytest.fixture(scope="module")
def registry():
    return load_registry([("dot", FakePlugin()), ("ensemble", ensemble)], entry_points=False)


@pytest.fixture
def suite_dir(tmp_path):
    tiny_dataset(tmp_path / "tiny")
    return tmp_path


def _write(directory, text, name="suite.toml"):
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(path, registry, stale=False, **kw):
    suite = read_suite(path)
    cells = expand(suite, registry)
    runner = Runner(suite, registry, out=suite.out, progress=lambda m: None, rerun_stale=stale)
    return runner.run_all(cells, **kw)


def test_members_run_first_and_a_second_invocation_runs_nothing(suite_dir, registry):
    path = _write(suite_dir, SUITE)
    first = _run(path, registry)
    assert [o.cell.entry.name for o in first] == ["dot4", "dot8", "both"] * 2
    assert [o.status for o in first] == ["ran"] * 6 and not any(o.note for o in first)
    ens = read_record(first[2].run_dir).data
    assert ens["config"]["options"]["runs"] == [first[0].run_dir.name, first[1].run_dir.name]
    assert ens["seed"] == 0 and ens["evaluation"]["sampled"] is False
    second = _run(path, registry)
    assert [o.status for o in second] == ["skipped"] * 6
    assert [o.run_dir for o in second] == [o.run_dir for o in first]


def test_dry_run_lists_what_would_run_and_what_is_skipped(suite_dir, registry):
    path = _write(suite_dir, SUITE)
    before = _run(path, registry, dry_run=True)
    assert [o.status for o in before] == ["would run", "would run", "would run"] * 2
    assert not (suite_dir / "runs").exists()
    _run(path, registry)
    assert [o.status for o in _run(path, registry, dry_run=True)] == ["would skip"] * 6


def test_an_ensemble_is_rerun_when_a_member_scores_otherwise(suite_dir, registry):
    import json
    import shutil

    from collm_bench.records.predictions import predictions_sha256

    path = _write(suite_dir, SUITE)
    first = _run(path, registry)
    shutil.rmtree(first[0].run_dir)   # dot4 seed 0 is gone: it runs again, to the same scores
    again = _run(path, registry)
    assert [o.status for o in again] == ["ran", "skipped", "skipped", "skipped", "skipped", "skipped"]
    member = first[1].run_dir          # dot8 seed 0 now scores otherwise (as a rerun elsewhere may)
    import pandas as pd

    frame = pd.read_csv(member / "predictions.csv")
    frame["score"] = -frame["score"]
    frame.to_csv(member / "predictions.csv", index=False)
    record = json.loads((member / "record.json").read_text())
    record["predictions_sha256"] = predictions_sha256(member)
    (member / "record.json").write_text(json.dumps(record))
    assert [o.status for o in _run(path, registry)] == ["skipped", "skipped", "ran", "skipped", "skipped", "skipped"]


def test_records_without_predictions_rerun_nothing_when_the_ensemble_stands(suite_dir, registry):
    # committed boards keep records only: a fresh checkout must not rerun members for predictions
    path = _write(suite_dir, SUITE)
    first = _run(path, registry)
    for outcome in first:
        (outcome.run_dir / "predictions.csv").unlink()
    assert [o.status for o in _run(path, registry, dry_run=True)] == ["would skip"] * 6
    assert [o.status for o in _run(path, registry)] == ["skipped"] * 6
    (first[5].run_dir / "record.json").unlink()   # seed 1's ensemble is gone: its members must run again
    again = _run(path, registry)
    assert [o.status for o in again] == ["skipped"] * 3 + ["ran"] * 3


# Two ensembles sharing a member (dot4), one seed.
SHARED = SUITE.replace("seeds = [0, 1]", "seeds = [0]").replace('name = "both"', 'name = "e1"') + """
[[entry]]
name = "e2"
method = "ensemble"
members = ["dot4", "dot6"]

[[entry]]
name = "dot6"
method = "dot"
options = { dim = 6 }
"""


def test_a_member_record_without_a_predictions_digest_does_not_keep_its_ensemble_stale(suite_dir, registry):
    import json

    path = _write(suite_dir, SUITE)
    first = _run(path, registry)
    record = json.loads((first[0].run_dir / "record.json").read_text())
    del record["predictions_sha256"]   # a record of before the digests
    (first[0].run_dir / "record.json").write_text(json.dumps(record))
    assert [o.status for o in _run(path, registry)] == ["skipped"] * 6
    (first[0].run_dir / "predictions.csv").unlink()   # nor without its predictions: by date then
    assert [o.status for o in _run(path, registry)] == ["skipped"] * 6


def test_a_real_run_plans_members_on_datasets_it_would_prepare(suite_dir, registry, monkeypatch):
    path = _write(suite_dir, SUITE)
    for outcome in _run(path, registry):
        (outcome.run_dir / "predictions.csv").unlink()
    monkeypatch.setattr(Runner, "available", lambda self, cell: False)   # as on a fresh checkout
    assert [o.status for o in _run(path, registry)] == ["skipped"] * 6


def test_a_member_rerun_for_one_ensemble_is_planned_for_every_ensemble_sharing_it(suite_dir, registry):
    path = _write(suite_dir, SHARED)
    for outcome in _run(path, registry):
        (outcome.run_dir / "predictions.csv").unlink()    # a checkout with records only
    changed = _write(suite_dir, SHARED.replace("options = { dim = 6 }", "options = { dim = 5 }"))
    # dot6 -> dim 5 is a new run, so e2 runs, so dot4 must give predictions again, so e1 runs too
    # and needs dot8's: all of it is known before anything runs
    planned = {o.cell.entry.name: o.status for o in _run(changed, registry, dry_run=True)}
    assert planned == dict.fromkeys(("dot4", "dot8", "dot6", "e1", "e2"), "would run")
    # e1's members rerun to the same scores here, so e1 stands; with other scores it would have
    # needed dot8's predictions, which is why they were planned
    assert {o.cell.entry.name: o.status for o in _run(changed, registry)} == \
        dict.fromkeys(("dot4", "dot8", "dot6", "e2"), "ran") | {"e1": "skipped"}


def test_keep_going_survives_an_ensemble_that_cannot_be_planned(suite_dir, registry):
    text = SHARED.replace('options = { dim = 8 }', 'options = { dim = 8 }\nsample_test = 20')
    outcomes = {o.cell.entry.name: o for o in _run(_write(suite_dir, text), registry, keep_going=True)}
    assert outcomes["e1"].status == "failed" and "members are evaluated on different rows" in outcomes["e1"].note
    assert outcomes["e2"].status == "ran"


def test_another_option_is_another_run(suite_dir, registry):
    path = _write(suite_dir, SUITE)
    _run(path, registry)
    changed = _write(suite_dir, SUITE.replace("max_epochs = 2", "max_epochs = 3"))
    assert [o.status for o in _run(changed, registry)] == ["ran"] * 6


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('method = "dot"\noptions = { dim = 8 }', 'methd = "dot"'), "unknown key 'methd' (did you mean 'method'"),
    (lambda s: s.replace('options = { dim = 8 }', 'options = { dimm = 8 }'), "unknown option 'dimm' (did you mean 'dim'"),
    (lambda s: s.replace('name = "dot8"\nmethod = "dot"', 'name = "dot8"\nmethod = "dott"'), "unknown method 'dott' (did you mean 'dot'"),
    (lambda s: s.replace('datasets = ["tiny"]', 'datasets = ["tinyy"]'), "unknown dataset 'tinyy'"),
    (lambda s: s.replace('members = ["dot4", "dot8"]', 'members = ["dot4", "dot9"]'), "member 'dot9' matches no entry"),
    (lambda s: s.replace('options = { dim = 4 }', 'options = { dim = 4 }\nbackbones = ["minilm"]'), "takes no backbones"),
    (lambda s: s.replace('[suite]', '[suit]'), "unknown key 'suit' (did you mean 'suite'"),
    (lambda s: s.replace('name = "dot8"', 'name = "dot4"'), "two entries are named 'dot4'"),
    (lambda s: s.replace('full_test = true', 'full_test = true\nsample_test = 5'), "exclude each other"),
])
def test_the_whole_file_is_checked_before_anything_runs(suite_dir, registry, edit, message):
    path = _write(suite_dir, edit(SUITE))
    with pytest.raises(UserError, match=message.replace("(", r"\(")) as err:
        _run(path, registry)
    assert "\n" not in str(err.value)
    assert not (suite_dir / "runs").exists()


OPTIONAL = '\n[[entry]]\nname = "opt"\nmethod = "notinstalled"\nplugin = "collm-bench-no-such-plugin"\n'


def test_an_optional_plugin_that_is_not_installed_skips_its_entry(suite_dir, registry):
    path = _write(suite_dir, SUITE + OPTIONAL)
    planned = _run(path, registry, dry_run=True)
    assert [(o.cell.entry.name, o.status) for o in planned][-2:] == [("opt", "would skip")] * 2   # seeds 0, 1
    assert planned[-1].note == "needs the plugin collm-bench-no-such-plugin, not installed" and planned[-1].run_dir is None
    outcomes = _run(path, registry)
    assert [o.status for o in outcomes] == ["ran"] * 6 + ["skipped"] * 2
    # an ensemble over it is skipped too (not blocked: nothing failed), and says why
    text = SUITE.replace('members = ["dot4", "dot8"]', 'members = ["dot4", "opt"]') + OPTIONAL
    both = [o for o in _run(_write(suite_dir, text), registry) if o.cell.entry.name == "both"]
    assert {o.status for o in both} == {"skipped"}
    assert both[0].note == "member opt: needs the plugin collm-bench-no-such-plugin, not installed"


def test_an_unknown_name_with_an_installed_plugin_is_still_refused(suite_dir, registry):
    # pytest is installed and registers no method 'notinstalled': a typo, or a broken plugin, not an absent one
    text = SUITE + OPTIONAL.replace("collm-bench-no-such-plugin", "pytest")
    with pytest.raises(UserError, match="unknown method 'notinstalled'"):
        _run(_write(suite_dir, text), registry, dry_run=True)
    with pytest.raises(UserError, match="plugin must be a distribution name"):
        _run(_write(suite_dir, SUITE + OPTIONAL.replace('"collm-bench-no-such-plugin"', '"../x"')), registry)


def test_member_cycles_are_refused(suite_dir, registry):
    text = SUITE.replace('name = "dot4"\nmethod = "dot"\noptions = { dim = 4 }',
                         'name = "dot4"\nmethod = "ensemble"\nmembers = ["both", "dot8"]')
    with pytest.raises(UserError, match="cycle"):
        _run(_write(suite_dir, text), registry)


def test_members_are_entry_names_first_then_row_labels(suite_dir, registry):
    by_label = SUITE.replace('members = ["dot4", "dot8"]', 'members = ["dot4", "dot"]')
    with pytest.raises(UserError, match="member 'dot' matches 2 runs"):   # dot4 and dot8 are both 'dot'
        _run(_write(suite_dir, by_label), registry, dry_run=True)
    named = by_label + '\n[[entry]]\nname = "dot"\nmethod = "dot"\noptions = { dim = 2 }\n'
    outcomes = _run(_write(suite_dir, named), registry, dry_run=True)
    ensemble_cell = next(o.cell for o in outcomes if o.cell.entry.name == "both")
    assert [m.entry.name for m in ensemble_cell.members] == ["dot4", "dot"]


def test_entry_selects_entries_and_the_members_their_ensembles_need(suite_dir, registry):
    suite = read_suite(_write(suite_dir, SUITE))
    cells = expand(suite, registry)
    assert [c.entry.name for c in select(suite, cells, ("dot8",))] == ["dot8", "dot8"]
    # the ensemble brings its members, in run order (members first)
    assert [c.entry.name for c in select(suite, cells, ("both",))] == ["dot4", "dot8", "both"] * 2
    assert select(suite, cells, ()) == cells
    with pytest.raises(UserError, match=r"suite.toml: unknown entry 'dot9' \(did you mean .*\); known: both, dot4, dot8"):
        select(suite, cells, ("dot9",))


def test_cli_entry_runs_one_entry_and_leaves_the_others(suite_dir, registry, cli):
    path = _write(suite_dir, SUITE)
    set_registry(registry)
    try:
        code, out, _ = cli(["suite", str(path), "--entry", "dot4"])
        assert code == 0 and "2 runs: 2 ran" in out
        code, out, _ = cli(["suite", str(path), "--dry-run"])   # dot4's records are there, the rest is not
        assert code == 0 and "6 runs: 2 would skip, 4 would run" in out
    finally:
        set_registry(None)


def test_cli_limit_says_the_numbers_are_partial(suite_dir, registry, cli):
    path = _write(suite_dir, SUITE)
    set_registry(registry)
    try:
        code, out, _ = cli(["suite", str(path), "--limit", "12", "--output", str(suite_dir / "table.md")])
        assert code == 0
        assert out.startswith("PARTIAL: --limit 12") and out.rstrip().endswith("not the full results")
        assert "not the whole test split" in out and "6 runs: 6 ran" in out
        assert (suite_dir / "table.md").read_text().startswith("**PARTIAL")
        code, out, _ = cli(["suite", str(path), "--dry-run"])   # --limit runs are other runs
        assert code == 0 and "6 runs: 6 would run" in out
        code, out, err = cli(["suite", str(path), "--dataset", "nope"])
        assert code == 2 and "unknown dataset 'nope'" in err
    finally:
        set_registry(None)


FAST_LLM = """
[suite]
out = "runs"
datasets = ["tiny"]
backbones = ["tiny-llama"]
full_test = true
table = 2

[options.collm]
max_steps = 4
eval_every = 2
batch_size = 8
history_titles = 3
valid_rows = 12
warmup_steps = 1
step2_max_steps = 4

[options.tallrec]
max_steps = 4
eval_every = 2
batch_size = 8
history_titles = 3
valid_rows = 12
warmup_steps = 1

[encoder_options.mf]
max_epochs = 2
dim = 8

[[entry]]
method = "collm"

[[entry]]
method = "mf"

[[entry]]
method = "tallrec"

[[entry]]
name = "mf+collm"
method = "ensemble"
members = ["mf", "collm-mf"]
"""


def test_a_dry_run_lists_the_companion_rows_and_who_writes_them(suite_dir, cli):
    """The plan names every row the suite writes, companions included (what a refresh's --prune
    keeps), and says which planned runs an earlier run writes on the way."""
    import re

    path = _write(suite_dir, FAST_LLM)
    code, out, _ = cli(["suite", str(path), "--dry-run"])
    assert code == 0, out
    lines = out.splitlines()
    collm = next(line for line in lines if re.match(r"\s*1\s+collm\s", line))
    companions = [line for line in lines if "+ " in line and "with 1" in line]
    assert len(companions) == 2, out                       # mf's and tallrec's rows
    mf_id, tallrec_id = (re.search(r"\w+__(mf|tallrec)__seed0__[0-9a-f]{10}", line).group(0) for line in companions)
    for name, run_id in (("mf", mf_id), ("tallrec", tallrec_id)):
        planned = next(line for line in lines if re.match(rf"\s*\d+\s+{name}\s", line))
        assert run_id in planned and "would skip" in planned and "written by run 1" in planned, out
    assert "would run" in collm
    assert "4 runs: 2 would run, 2 would skip" in out      # collm and the ensemble; mf and tallrec by collm


def test_the_plan_names_companion_rows_of_a_dataset_whose_name_holds_double_underscores(tmp_path):
    """A row's method is what its method declares, not read back out of a run id ("a__b" is a
    valid dataset name)."""
    from types import SimpleNamespace

    from collm_bench.suites.plan import Outcome, report

    cell = SimpleNamespace(entry=SimpleNamespace(name="collm"), dataset="my__data", seed=0,
                           describe=lambda: "my__data collm-mf seed 0")
    outcome = Outcome(cell, "would run", tmp_path / "my__data__collm__seed0__0123456789",
                      companions={"my__data__mf__seed0__abcdef0123": "mf"})
    table = report([outcome])
    assert "+ my__data mf seed 0" in table and "with 1" in table and "my__data__mf__seed0__abcdef0123" in table


def test_a_tiny_llm_suite_reuses_companion_rows_and_skips_on_rerun(suite_dir, cli):
    path = _write(suite_dir, FAST_LLM)
    code, out, _ = cli(["suite", str(path)])
    assert code == 0, out
    assert "4 runs: 2 ran, 2 skipped" in out      # mf and tallrec were written by the CoLLM run
    assert "### Table II: overall performance (backbone tiny-llama)" in out
    code, out, _ = cli(["suite", str(path)])
    assert code == 0 and "4 runs: 4 skipped" in out


SUITE_FILES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "leaderboards" / "suites").glob("*.toml")
                     if p.name != "boards.toml")


@pytest.mark.parametrize("name", SUITE_FILES)
def test_committed_suite_files_are_valid(name, tmp_path):
    """Every committed suite file reads and expands, and boards.toml lists it (a board or a suite
    the refresh names as skipped), so no suite is forgotten by the refresh. A file on the
    authors' ML-1M split (given as a folder, not redistributable) expands on a tiny dataset."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from collm_bench.suites.plan import Overrides

    leaderboards = Path(__file__).resolve().parents[1] / "leaderboards"
    path = leaderboards / "suites" / f"{name}.toml"
    suite = read_suite(path)
    overrides = Overrides()
    if "ml-1m-collm" in suite.axes["datasets"]:
        tiny_dataset(tmp_path / "ml-1m-collm")
        overrides = Overrides(datasets=(str(tmp_path / "ml-1m-collm"),))
    cells = expand(suite, load_registry(), overrides)
    assert cells and suite.out.resolve().parent == leaderboards / "runs"
    if name.startswith("table"):
        assert suite.full_test and suite.table == int(name[-1])
    spec = tomllib.loads((leaderboards / "boards.toml").read_text())
    listed = {b["suite"] for b in spec["board"]} | {s["file"] for s in spec.get("suite", [])}
    assert f"suites/{path.name}" in listed


def _forget(run_dir, change):
    """Edit a record's stored dependencies as if its code had changed since."""
    import json

    path = run_dir / "record.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_stale_runs_are_named_when_skipped_and_rerun_with_stale(suite_dir, registry):
    path = _write(suite_dir, SUITE.replace("seeds = [0, 1]", "seeds = [0]"))
    first = _run(path, registry)
    assert all(o.status == "ran" and not o.note for o in first)
    dot4, dot8, both = (o.run_dir for o in first)
    recorded = read_record(dot4).dependencies["definitions"]
    assert any(label.startswith("collm_bench.testing.fakes:") for label in recorded.values())
    assert read_record(dot4).stale_reasons(registry) == []
    digest, label = next((d, label) for d, label in sorted(recorded.items()) if label.startswith("collm_bench.encoders.training:"))

    def change_one(record):   # as if that definition's code had been another
        definitions = record["dependencies"]["definitions"]
        definitions["0" * 16] = definitions.pop(digest)

    _forget(dot4, change_one)
    _forget(dot8, lambda r: r.pop("dependencies"))
    _run_again = lambda **kw: {o.cell.entry.name: o for o in _run(path, registry, **kw)}  # noqa: E731
    skipped = _run_again()
    assert [skipped[n].status for n in ("dot4", "dot8", "both")] == ["skipped"] * 3
    assert skipped["dot4"].note == f"stale: {label} changed (rerun with --stale)"
    assert skipped["dot8"].note.startswith("stale: its code is not recorded")
    assert not skipped["both"].note
    listed = _run_again(dry_run=True, stale=True)
    assert [listed[n].status for n in ("dot4", "dot8")] == ["would run"] * 2
    assert listed["both"].status == "would run"  # a member would run: what it will score is not known yet
    rerun = _run_again(stale=True)
    # the members score exactly as before, so the ensemble of their predictions stands
    assert [rerun[n].status for n in ("dot4", "dot8", "both")] == ["ran", "ran", "skipped"]
    assert read_record(dot4).stale_reasons(registry) == [] and read_record(dot8).stale_reasons(registry) == []


def test_a_suite_too_large_is_refused_before_it_is_expanded(suite_dir, registry):
    """12,000 cells: refused with its size, before expansion (which would first refuse 'dot'
    taking no strategies)."""
    seeds = ", ".join(str(i) for i in range(1000))
    text = SUITE.replace("seeds = [0, 1]", f"seeds = [{seeds}]").replace(
        'name = "dot8"\nmethod = "dot"', 'name = "dot8"\nmethods = ["dot"]\nstrategies = [' +
        ", ".join(f'"s{i}"' for i in range(10)) + "]")
    with pytest.raises(UserError, match=r"its matrix has 12,000 runs, over the limit of 10,000: split it") as err:
        _run(_write(suite_dir, text), registry, dry_run=True)
    assert "\n" not in str(err.value)
