"""The issue-9 study scripts on hand-made records: the budget table and figure
(scripts/budget_figure.py) and the recipe table (scripts/recipe_table.py)."""
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


def test_budget_points_table_and_figure(tmp_path):
    budget = _script("budget_figure")
    runs = tmp_path / "runs"
    step1 = lambda steps: {"steps_run": steps, "best_valid_auc": 0.55, "best_step": steps, "valid_curve": []}
    _write(runs, record("ml-1m", "tallrec", 0.54, 0.50, backbone="minilm"), {"batch_size": 16, "max_steps": 150},
           {"llm-step1": step1(150)}, 220.0)
    _write(runs, record("ml-1m", "tallrec", 0.60, 0.55, backbone="minilm"), {"batch_size": 16, "max_steps": 625},
           {"llm-step1": step1(600)}, 900.0)   # stopped early at 600 of 625 steps: 9,600 rows read
    _write(runs, record("ml-1m", "collm", 0.67, 0.66, encoder="mf", backbone="minilm"),
           {"batch_size": 16, "max_steps": 150}, {"llm-step1": step1(150), "llm-step2": {"steps_run": 100}}, 410.0)
    points = budget.points(runs)
    assert points == {"collm-mf": [(2400, 0.67, 410.0, 1600)],
                      "tallrec": [(2400, 0.54, 220.0, 0), (9600, 0.60, 900.0, 0)]}
    out = tmp_path / "budget.png"
    assert budget.main([str(runs), "--output", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = out.with_suffix(".md").read_text()
    assert "| tallrec  | 9,600         | 0.6000     | 15.0        | -             |" in table


def test_recipe_table_ranks_by_validation_and_states_shared_options_once(tmp_path):
    recipe = _script("recipe_table")
    runs = tmp_path / "runs"
    for lr, best in ((0.001, 0.56), (0.003, 0.58), (0.0003, 0.52)):
        curve = [[50, best - 0.02], [100, best]]
        _write(runs, record("ml-100k", "tallrec", 0.5, 0.5, backbone="minilm"),
               {"preset": "cpu", "valid_rows": 2000, "lr": lr},
               {"llm-step1": {"best_valid_auc": best, "best_step": 100, "valid_curve": curve, "train_seconds": 60}},
               60.0)
    lines, shared = recipe.rows(runs)
    assert [line[1] for line in lines] == ["0.5800", "0.5600", "0.5200"]
    assert [line[3] for line in lines] == ["0.560 0.580", "0.540 0.560", "0.500 0.520"]
    # preset and valid_rows are the study's setting, stated once; lr 1e-3 is the preset's own value
    assert shared == {"valid_rows=2000"}
    assert [line[0] for line in lines] == ["lr=0.003", "(the study's baseline)", "lr=0.0003"]
