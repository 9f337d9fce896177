"""The issue-9 study scripts on hand-made records: the budget table and figure
(scripts/budget_study.py) and the recipe table (scripts/recipe_table.py)."""
import importlib.util
import json
from pathlib import Path

from test_paper_tables import record

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root, data, options, training, train_seconds):
    data["config"]["options"] = options
    data["training"] = training
    data["timings"]["train_seconds"] = train_seconds
    (root / data["run_id"]).mkdir(parents=True)
    (root / data["run_id"] / "record.json").write_text(json.dumps(data))


def _intervals(samples, seed=0):
    return {"seed": seed, "resamples": len(samples), "users": "first appearance", "auc": [min(samples), max(samples)],
            "samples": {"auc": samples}}


def test_budget_page_points_pairs_and_figure(tmp_path):
    budget = _script("budget_study")
    runs = tmp_path / "budget-ml-1m"
    step1 = lambda steps, best: {"steps_run": steps, "best_valid_auc": 0.55, "best_step": best, "valid_curve": []}
    stages = lambda *seconds: {f"stage{i}": {"seconds": s} for i, s in enumerate(seconds)}
    made = [
        (record("ml-1m", "tallrec", 0.54, 0.50, backbone="minilm"), {"batch_size": 16, "max_steps": 150},
         {"llm-step1": step1(150, 100)}, 220.0, stages(300, 60), [0.53, 0.54, 0.55, 0.54, 0.54]),
        # stopped early at 600 of 625 steps: 9,600 rows read
        # ... and with another recipe than the row's other point (made under another preset): said
        (record("ml-1m", "tallrec", 0.60, 0.55, backbone="minilm"), {"batch_size": 16, "max_steps": 625, "head_lr": 0.01},
         {"llm-step1": step1(600, 600)}, 900.0, stages(960), [0.59, 0.60, 0.61, 0.60, 0.60]),
        (record("ml-1m", "collm", 0.67, 0.66, encoder="mf", backbone="minilm"), {"batch_size": 16, "max_steps": 150},
         {"llm-step1": step1(150, 100), "llm-step2": {"steps_run": 100}}, 410.0, stages(300, 200, 100),
         [0.66, 0.67, 0.68, 0.67, 0.67]),
        (record("ml-1m", "mf", 0.58, 0.56), {}, {}, 30.0, stages(30), [0.56, 0.62, 0.52, 0.58, 0.60]),
        (record("ml-1m", "mf", 0.59, 0.56, seed=1), {}, {}, 30.0, stages(30), [0.57, 0.63, 0.53, 0.59, 0.61]),
        # the untuned LLM has no step 1 either: a reference, like MF
        (record("ml-1m", "icl", 0.48, 0.49, backbone="minilm"), {"batch_size": 16}, {}, 0.0, stages(40),
         [0.47, 0.48, 0.49, 0.48, 0.48]),
        # an LLM record without its step-1 steps (older records): left out and said, not a reference
        (record("ml-1m", "tallrec", 0.55, 0.50, backbone="minilm"), {"batch_size": 16}, {"llm-step1": {}}, 1.0,
         stages(1), [0.5] * 5),
    ]
    for data, options, training, seconds, stage_times, samples in made:
        data["intervals"] = _intervals(samples)
        data["dataset"]["manifest_sha256"] = "abc"
        data["timings"]["stages"] = stage_times
        _write(runs, data, options, training, seconds)
    records = [r for _, r in budget.iter_records(runs)]
    points, refs, skipped = budget.study(records)
    assert {name: [(p.rows, p.best_rows, p.step2_rows, p.train_minutes, p.wall_minutes) for p in values]
            for name, values in points.items()} == {
        "collm-mf": [(2400, 1600, 1600, 410.0 / 60, 10.0)],
        "tallrec": [(2400, 1600, 0, 220.0 / 60, 6.0), (9600, 9600, 0, 15.0, 16.0)]}
    assert [(r.row_label, r.seed) for r in refs] == [("icl", 0), ("mf", 0)]  # one per row: the lowest seed
    assert len(skipped) == 1 and "no step-1 steps run" in skipped[0]
    tallrec, collm = points["tallrec"][0].record, points["collm-mf"][0].record
    # paired differences by hand: collm - tallrec = .13 at every resample: higher;
    # tallrec - mf = -.03 -.08 +.03 -.04 -.06 spans 0; mf - collm is negative at every resample
    assert budget.compare(collm, tallrec).endswith(": higher")
    mf = next(r for r in refs if r.row_label == "mf")
    assert budget.compare(tallrec, mf).endswith(": not distinguishable")
    assert budget.compare(mf, collm).endswith(": lower")
    assert budget.compare(tallrec, tallrec) == "+0.0000 (+0.0000 to +0.0000): not distinguishable"
    for change in ({"intervals": _intervals([0.6] * 5, seed=1)},  # other resamples
                   {"dataset": {"name": "ml-1m", "manifest_sha256": "def"}},  # another split
                   {"evaluation": dict(collm.evaluation, rows=99)}):  # other test rows
        assert budget.compare(budget.RunRecord(dict(collm.data, **change)), tallrec) == "+0.1300 (not paired)"

    page = tmp_path / "budget.md"
    assert budget.main([str(runs), "--output", str(page)]) == 0
    assert (tmp_path / "budget-ml-1m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    image = Image.open(tmp_path / "budget-ml-1m.png")
    drawn = json.loads(image.info["Description"])
    assert image.size == (1080, 504)                                    # 9 x 4.2 in, 120 dpi
    assert drawn["x_ticks"] == [2400, 9600]                             # the budgets run, as ticks
    assert drawn["points"]["tallrec"] == [[2400, 0.54], [9600, 0.60]]   # from the records
    assert drawn["references"] == {"icl": 0.48, "mf": 0.58}
    text = page.read_text()
    assert text == budget.render([runs])
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines() if line.startswith("| ")]
    assert ["tallrec", "9,600", "9,600"] in [row[:3] for row in cells]
    at_9600 = next(row for row in cells if row[0] == "9,600")
    # columns: collm-mf against tallrec, icl, mf (no CoLLM-MF at 9,600 rows), then tallrec against icl and mf
    assert at_9600[1:4] == ["-", "-", "-"]
    assert at_9600[4].endswith(": higher") and at_9600[5].endswith(": not distinguishable")
    assert "- left out: " in text
    assert ("- not the same recipe: tallrec at 9,600 step-1 rows was run with other options than the row's other "
            "points: head_lr=0.01 (others: None)") in text


def test_recipe_table_ranks_by_validation_and_states_shared_options_once(tmp_path):
    recipe = _script("recipe_table")
    runs = tmp_path / "runs"
    # lr 1e-3 (the preset's own value) and 3e-3 have two seeds: one line each, the mean of .56 and .54 = .55
    for lr, best, seed in ((0.001, 0.56, 0), (0.003, 0.58, 0), (0.0003, 0.52, 0), (0.001, 0.54, 1), (0.003, 0.57, 1)):
        curve = [[50, best - 0.02], [100, best]]
        _write(runs, record("ml-100k", "tallrec", 0.5, 0.5, backbone="minilm", seed=seed),
               {"preset": "cpu", "valid_rows": 2000, "lr": lr, "batch_size": 16},
               {"llm-step1": {"best_valid_auc": best, "best_step": 100, "steps_run": 100, "valid_curve": curve,
                              "train_seconds": 60 + seed * 20}}, 60.0)
    lines, shared = recipe.rows(runs)
    assert [line[1] for line in lines] == ["0.5750 ± 0.0071", "0.5500 ± 0.0141", "0.5200"]
    assert [line[2] for line in lines] == ["0,1", "0,1", "0"]
    # seed by seed against the baseline: (.58 - .56, .57 - .54) and .52 - .56
    assert [line[4] for line in lines] == ["+0.0250 ± 0.0071 (2)", "-", "-0.0400 (1)"]
    assert [line[5] for line in lines] == ["1,600"] * 3  # 100 steps of 16 rows
    assert [line[6] for line in lines] == ["0.560 0.580 / 0.550 0.570", "0.540 0.560 / 0.520 0.540", "0.500 0.520"]
    assert lines[1][7] == "70 ± 14"
    # preset and valid_rows are the study's setting, stated once; lr 1e-3 is the preset's own value
    assert shared == {"valid_rows=2000"}
    assert [line[0] for line in lines] == ["lr=0.003", "(the study's baseline)", "lr=0.0003"]


def test_a_candidate_the_preset_has_since_adopted_keeps_its_name(tmp_path):
    """The study's setting is its candidates' most common values, not today's preset: after the
    cpu preset adopted head_lr=1e-2 the study's baseline (head_lr unset) stays the baseline."""
    recipe = _script("recipe_table")
    runs = tmp_path / "runs"
    for changed, best in (({}, 0.52), ({"head_lr": 0.01}, 0.55), ({"lr": 0.003}, 0.53)):
        _write(runs, record("ml-100k", "tallrec", 0.5, 0.5, backbone="minilm"),
               {"preset": "cpu", "valid_rows": 2000, "lr": 0.001, "head_lr": None, **changed},
               {"llm-step1": {"best_valid_auc": best, "best_step": 100, "steps_run": 100,
                              "valid_curve": [[100, best]]}}, 60.0)
    lines, shared = recipe.rows(runs)
    assert [line[0] for line in lines] == ["head_lr=0.01", "lr=0.003", "(the study's baseline)"]
    assert shared == {"valid_rows=2000", "head_lr=None"}   # unlike today's cpu preset


def test_claims_page_has_a_section_per_step1_budget(tmp_path):
    """A folder with step-1 records at two budgets (the budget study) is checked once per budget,
    each with the rows that have no step 1 (MF, Prompt4NR); a folder of one budget is one section."""
    claims = _script("paper_claims")
    runs = tmp_path / "budget-ml-1m"
    step1 = lambda steps: {"llm-step1": {"steps_run": steps}}
    for data, options, training in [
        (record("ml-1m", "tallrec", 0.54, 0.50, backbone="minilm"), {"batch_size": 16}, step1(150)),
        (record("ml-1m", "tallrec", 0.66, 0.60, backbone="minilm"), {"batch_size": 16}, step1(625)),
        (record("ml-1m", "collm", 0.70, 0.66, encoder="mf", backbone="minilm", strategy="default"),
         {"batch_size": 16, "strategy": "default"}, step1(625)),
        (record("ml-1m", "mf", 0.65, 0.62), {}, {}),
        (record("ml-1m", "prompt4nr", 0.53, 0.51, backbone="minilm"), {"batch_size": 16}, {"prompt4nr-tune": {}}),
    ]:
        _write(runs, data, options, training, 1.0)
    sections = claims.sections(runs)
    assert [(column, title) for column, title, _ in sections] == [
        ("ml-1m minilm 2,400 (`budget-ml-1m`)", "ml-1m, minilm (`budget-ml-1m`, 100 test rows, step 1 on 2,400 rows)"),
        ("ml-1m minilm 10,000 (`budget-ml-1m`)", "ml-1m, minilm (`budget-ml-1m`, 100 test rows, step 1 on 10,000 rows)")]
    small, large = ({v.claim: v.evidence for v in verdicts} for _, _, verdicts in sections)
    assert small["TALLRec beats MF, LightGCN and SASRec (AUC)"].startswith("AUC: MF 0.6500 >=? TALLRec 0.5400")
    assert large["TALLRec beats MF, LightGCN and SASRec (AUC)"].startswith("AUC: MF 0.6500 <? TALLRec 0.6600")
    chain = "Prompt4NR < TALLRec < CoLLM-MF (AUC, UAUC)"   # CoLLM-MF trained its step 1 on 10,000 rows only
    assert small[chain].startswith("AUC: rows missing")
    assert large[chain].startswith("AUC: Prompt4NR 0.5300 <? TALLRec 0.6600 <? CoLLM-MF 0.7000")
    page = claims.render([runs])
    assert "| claim | ml-1m minilm 2,400 (`budget-ml-1m`) | ml-1m minilm 10,000 (`budget-ml-1m`) |" in page
    assert "| TALLRec beats MF, LightGCN and SASRec (AUC) | no | holds* |" in page
    # TALLRec at 2,400 beside CoLLM at 10,000 are still two budgets, each on its own
    (runs / sorted(p.name for p in runs.iterdir() if "tallrec" in p.name)[1]).rename(tmp_path / "gone")
    assert [column for column, _, _ in claims.sections(runs)] == [
        "ml-1m minilm 2,400 (`budget-ml-1m`)", "ml-1m minilm 10,000 (`budget-ml-1m`)"]
    (runs / next(p.name for p in runs.iterdir() if "collm" in p.name)).rename(tmp_path / "gone-too")
    assert [column for column, _, _ in claims.sections(runs)] == ["ml-1m minilm 2,400 (`budget-ml-1m`)"]
