from collm_bench.reporting.leaderboard import render
from collm_bench.records.store import write_record


def _record(run_dir, method, seed, auc, train_s):
    metrics = {"overall": {"auc": auc, "uauc": 0.6, "ndcg": 0.8},
               "warm": {"auc": auc + 0.1}, "cold": {"auc": None}}
    run_dir.mkdir(parents=True)
    write_record(run_dir, {
        "run_id": run_dir.name, "method": method, "encoder": method, "backbone": None, "seed": seed,
        "dataset": {"name": "toy"}, "metrics": metrics,
        "evaluation": {"split": "test", "rows": 10, "total_rows": 10, "sampled": False},
        "timings": {"train_seconds": train_s, "inference_seconds": 0.5},
    })


def test_markdown_table_matches_hand_written(tmp_path):
    _record(tmp_path / "a", "mf", 0, 0.60, 10.0)
    _record(tmp_path / "b", "mf", 1, 0.70, 20.0)
    _record(tmp_path / "c", "din", 0, 0.75, 3.0)
    expected = "\n".join([
        "## toy",
        "",
        "Evaluated on all 10 test rows. Ranked by AUC.",
        "",
        "| Method   | Backbone   | AUC             | UAUC            | NDCG            | Warm AUC        | Cold AUC   | Train s    | Infer s   | Seeds     |",
        "|----------|------------|-----------------|-----------------|-----------------|-----------------|------------|------------|-----------|-----------|",
        "| din      | -          | 0.7500          | 0.6000          | 0.8000          | 0.8500          | -          | 3.0        | 0.5       | seed 0    |",
        "| mf       | -          | 0.6500 ± 0.0707 | 0.6000 ± 0.0000 | 0.8000 ± 0.0000 | 0.7500 ± 0.0707 | -          | 15.0 ± 7.1 | 0.5 ± 0.0 | seeds 0,1 |",
        "",
    ])
    assert render(tmp_path, "md") == expected


def test_sampled_evaluation_is_stated(tmp_path):
    _record(tmp_path / "a", "mf", 0, 0.6, 1.0)
    import json

    path = tmp_path / "a" / "record.json"
    record = json.loads(path.read_text())
    record["evaluation"].update(rows=5, sampled=True)
    path.write_text(json.dumps(record))
    assert "a sample of 5 of 10 test rows (not the whole test split)" in render(tmp_path, "md")
    record["evaluation"]["sample"] = {"unit": "rows", "users": 4, "of_users": 5}
    path.write_text(json.dumps(record))
    assert "a sample of 5 of 10 test rows, drawn within 4 of 5 users (not the whole test split)" in render(tmp_path, "md")
    record["evaluation"]["sample"].update(warm_users=1, cold_users=4)
    path.write_text(json.dumps(record))
    assert ("a sample of 5 of 10 test rows, drawn within 4 of 5 users, 1 of them with warm rows and 4 with cold "
            "(not the whole test split)") in render(tmp_path, "md")
    record["evaluation"]["sample"] = {"unit": "users", "users": 2, "of_users": 5}   # the sample before 2026-12-07
    path.write_text(json.dumps(record))
    assert "a sample of 5 of 10 test rows, 2 whole users of 5 (not the whole test split)" in render(tmp_path, "md")


def test_random_weight_backbones_are_labelled(tmp_path):
    import json

    _record(tmp_path / "a", "tallrec", 0, 0.6, 1.0)
    path = tmp_path / "a" / "record.json"
    record = json.loads(path.read_text())
    record.update(backbone="tiny-llama", meaningless=True, encoder=None)
    path.write_text(json.dumps(record))
    assert "tiny-llama (random weights: meaningless)" in render(tmp_path, "md")


def test_a_learned_head_instead_of_the_yes_token_is_stated(tmp_path):
    """Encoder backbones have no language-model head: boards say their LLM rows read a learned
    head (a departure from the paper); a causal backbone's rows say nothing."""
    import json

    from collm_bench.reporting.paper_tables import render_tables
    from collm_bench.records.store import iter_records

    for name, backbone, kind in (("a", "minilm", "encoder"), ("b", "smollm2", "causal")):
        _record(tmp_path / name, "tallrec", 0, 0.6, 1.0)
        path = tmp_path / name / "record.json"
        record = json.loads(path.read_text())
        record.update(backbone=backbone, encoder=None, training={"backbone": {"kind": kind}})
        path.write_text(json.dumps(record))
    note = ("minilm: an encoder with no language-model head, so its LLM rows score with a learned one-logit head "
            "on the first token, tuned with the LoRA weights, not the paper's Yes-token logit.")
    board = render(tmp_path, "md")
    assert note in board and board.count("language-model head") == 1
    tables = render_tables(2, (r for _, r in iter_records(tmp_path)), "md", None)
    assert f"- {note}" in tables and "smollm2: an encoder" not in tables


def test_same_name_other_configuration_is_another_row(tmp_path):
    import json

    def write(name, config):
        _record(tmp_path / name, "collm", 0, 0.6, 1.0)
        path = tmp_path / name / "record.json"
        record = json.loads(path.read_text())
        record["config"] = {"method": "collm", "seed": 0, **config}
        path.write_text(json.dumps(record))

    # options other than the method's defaults are named in the row
    write("a", {"options": {"strategy": "default"}})
    write("b", {"options": {"strategy": "t1"}})
    rows = [line.split("|")[1].strip() for line in render(tmp_path, "md").splitlines() if line.startswith("| collm")]
    assert sorted(rows) == ["collm", "collm (strategy=t1)"]
    # configurations that differ in anything else are told apart by their digest
    write("c", {"options": {"strategy": "default"}, "dataset_sha256": "other"})
    rows = [line for line in render(tmp_path, "md").splitlines() if line.startswith("| collm [")]
    assert len(rows) == 2 and all("| seed 0  |" in r for r in rows)


def test_rows_are_ranked_by_auc_and_a_single_seed_shows_its_interval(tmp_path):
    import json

    _record(tmp_path / "a", "mf", 0, 0.60, 1.0)
    _record(tmp_path / "b", "lightgcn", 0, 0.70, 1.0)
    _record(tmp_path / "c", "din", 0, 0.65, 1.0)
    path = tmp_path / "b" / "record.json"
    record = json.loads(path.read_text())
    record["intervals"] = {"auc": [0.68, 0.72], "uauc": [0.55, 0.65]}
    path.write_text(json.dumps(record))
    md = render(tmp_path, "md")
    rows = [line.split("|")[1].strip() for line in md.splitlines()[6:] if line.startswith("|")]
    assert rows == ["lightgcn", "din", "mf"]
    assert "| 0.7000 (0.6800-0.7200) | 0.6000 (0.5500-0.6500) |" in md and "bootstrap over users" in md


def test_rows_the_paired_bootstrap_cannot_tell_from_the_best_are_marked(tmp_path):
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    best = 0.70 + rng.normal(scale=0.01, size=200)
    tie = best - 0.001 + rng.normal(scale=0.01, size=200)
    # d ties like b but its resamples were drawn with another seed: its samples do not pair
    for name, auc_value, samples, draw_seed in (("a", 0.70, best, 0), ("b", 0.699, tie, 0), ("c", 0.60, best - 0.10, 0),
                                                ("d", 0.698, tie, 1)):
        _record(tmp_path / name, f"m{name}", 0, auc_value, 1.0)
        path = tmp_path / name / "record.json"
        record = json.loads(path.read_text())
        record["dataset"]["manifest_sha256"] = "0" * 64
        record["intervals"] = {"auc": [auc_value - 0.02, auc_value + 0.02], "uauc": [0.5, 0.7],
                               "users": "first appearance", "seed": draw_seed, "resamples": 200,
                               "samples": {"auc": [round(float(v), 5) for v in samples]}}
        path.write_text(json.dumps(record))
    md = render(tmp_path, "md")
    names = [line.split("|")[1].strip() for line in md.splitlines()[6:] if line.startswith("|")]
    assert names == ["ma", "mb ≈", "md", "mc"]
    assert "samples" not in render(tmp_path, "json")


def test_no_row_is_marked_when_the_best_row_has_several_seeds_and_the_note_says_so(tmp_path):
    import json

    _record(tmp_path / "a", "mf", 0, 0.70, 1.0)
    _record(tmp_path / "b", "mf", 1, 0.72, 1.0)
    _record(tmp_path / "c", "din", 0, 0.69, 1.0)
    path = tmp_path / "c" / "record.json"
    record = json.loads(path.read_text())
    record["intervals"] = {"auc": [0.67, 0.71], "uauc": [0.5, 0.7], "samples": {"auc": [0.69] * 20}}
    path.write_text(json.dumps(record))
    md = render(tmp_path, "md")
    assert "| din      |" in md and "≈ |" not in md
    assert "No row is marked ≈ here: the best row has several seeds" in md


def _ensemble(run_dir, seed, members, auc):
    import json

    _record(run_dir, "ensemble", seed, auc, 1.0)
    path = run_dir / "record.json"
    record = json.loads(path.read_text())
    record.update(label="mf+din", encoder=None,
                  config={"method": "ensemble", "seed": seed, "options": {"runs": members, "normalize": "sigmoid"}})
    path.write_text(json.dumps(record))


def test_the_seeds_of_an_ensemble_are_one_row(tmp_path):
    # members' run ids carry their seed: the ensemble's row is told by its members' configurations
    import json

    for seed in (0, 1):
        for method in ("mf", "din"):
            _record(tmp_path / f"{method}{seed}", method, seed, 0.6, 1.0)
            path = tmp_path / f"{method}{seed}" / "record.json"
            record = json.loads(path.read_text())
            record["config"] = {"method": method, "seed": seed}
            path.write_text(json.dumps(record))
        _ensemble(tmp_path / f"ens{seed}", seed, [f"mf{seed}", f"din{seed}"], 0.70 + seed / 100)
    rows = [line for line in render(tmp_path, "md").splitlines() if line.startswith("| mf+din")]
    assert len(rows) == 1 and "0.7050 ± 0.0071" in rows[0] and "| seeds 0,1 " in rows[0]
