"""Each paper table renderer against a hand-written expected table, from hand-made records
(the paper's own numbers where it gives them)."""
import json
import re

import pytest

from collm_bench import UserError
from collm_bench.reporting.paper_tables import build_tables, render_tables

ML, BOOK = "ml-1m", "amazon-book"
STAMP = iter(range(10_000))


def record(dataset, method, auc, uauc, ndcg=None, *, encoder=None, backbone=None, seed=0, strategy=None,
           train=None, infer=None, members=None, warm=None, cold=None, rows=100, sampled=False, label=None):
    options = {"strategy": strategy} if strategy else ({"normalize": "sigmoid"} if members else None)
    return {
        "run_id": f"{dataset}__{method}__seed{seed}__{next(STAMP):05d}",
        "dataset": {"name": dataset}, "method": method, "encoder": encoder or (None if backbone else method),
        "backbone": backbone, "seed": seed, "label": label, "meaningless": False,
        "config": {"dataset": dataset, "method": method, "seed": seed, "options": options, "encoder": encoder,
                   "evaluation": {"sampled": sampled, "rows": rows}},
        "metrics": {"overall": {"auc": auc, "uauc": uauc, "ndcg": ndcg}, "warm": warm or {}, "cold": cold or {}},
        "timings": {"train_seconds": train, "inference_seconds": infer},
        "evaluation": {"rows": rows, "total_rows": 1000 if sampled else rows, "sampled": sampled},
        "training": {"members": members, "normalize": "sigmoid"} if members else {},
        "device": "cuda:A100", "date": f"2026-01-01T00:00:{next(STAMP):05d}",
    }


# Table II of the paper, ML-1M: (name, method, encoder, backbone?, AUC, UAUC, NDCG)
PAPER_II = [
    ("mf", None, 0.6482, 0.6361, 0.8447), ("lightgcn", None, 0.5959, 0.6499, 0.8564),
    ("sasrec", None, 0.7078, 0.6884, 0.8612), ("din", None, 0.7166, 0.6459, 0.8496),
    ("ctrl", "din", 0.7159, 0.6492, 0.8559), ("icl", None, 0.5320, 0.5268, 0.8114),
    ("prompt4nr", None, 0.7071, 0.6739, 0.8663), ("tallrec", None, 0.7097, 0.6818, 0.8711),
    ("collm", "mf", 0.7295, 0.6875, 0.8714), ("collm", "lightgcn", 0.7100, 0.6967, 0.8740),
    ("collm", "sasrec", 0.7235, 0.6990, 0.8765), ("collm", "din", 0.7353, 0.6923, 0.8735),
]
LLM = {"ctrl", "icl", "prompt4nr", "tallrec", "collm"}


def paper_table_ii():
    out = []
    for method, encoder, auc, uauc, ndcg in PAPER_II:
        backbone = "vicuna7b" if method in LLM else None
        out.append(record(ML, method, auc, uauc, ndcg, encoder=encoder, backbone=backbone,
                          strategy="default" if method == "collm" else None))
    return out


def test_table_ii_layout_and_rel_imp():
    (table,) = build_tables(2, paper_table_ii())
    assert table.title == "Table II: overall performance (backbone vicuna7b)"
    assert table.headers == ["", "Methods", "ml-1m AUC", "ml-1m UAUC", "ml-1m NDCG", "ml-1m Rel. Imp."]
    assert table.rows == [
        ["Collab.", "MF", "0.6482", "0.6361", "0.8447", "10.3%"],
        ["", "LightGCN", "0.5959", "0.6499", "0.8564", "13.2%"],
        ["", "SASRec", "0.7078", "0.6884", "0.8612", "1.9%"],
        ["", "DIN", "0.7166", "0.6459", "0.8496", "4.9%"],
        # the paper prints 4.6% (4.67 by its caption's own rule)
        ["LM+Collab.", "CTRL (DIN)", "0.7159", "0.6492", "0.8559", "4.7%"],
        ["LLMRec", "ICL", "0.5320", "0.5268", "0.8114", "33.8%"],
        # the paper prints 2.7% (2.59 by its caption's rule)
        ["", "Prompt4NR", "0.7071", "0.6739", "0.8663", "2.6%"],
        ["", "TALLRec", "0.7097", "0.6818", "0.8711", "1.8%"],
        ["Ours", "CoLLM-MF", "0.7295", "0.6875", "0.8714", "-"],
        ["", "CoLLM-LightGCN", "0.7100", "0.6967", "0.8740", "-"],
        ["", "CoLLM-SASRec", "0.7235", "0.6990", "0.8765", "-"],
        ["", "CoLLM-DIN", "0.7353", "0.6923", "0.8735", "-"],
        ["Beyond the paper", "BinLLM", "-", "-", "-", "-"],
        ["", "ReLLa", "-", "-", "-", "-"],
        ["", "ReLLa (retrieval only)", "-", "-", "-", "-"],
        ["", "ReLLa zero-shot", "-", "-", "-", "-"],
    ]
    assert "ml-1m: evaluated on all 100 test rows" in table.notes
    assert table.notes[-1] == ("no record yet, shown as -: BinLLM (ml-1m), ReLLa (ml-1m), ReLLa (retrieval only) "
                               "(ml-1m), ReLLa zero-shot (ml-1m)")


def test_table_ii_rows_beyond_the_paper_are_told_apart_by_their_options():
    records = paper_table_ii()
    for method, options, auc, backbone in [("binllm", {}, 0.70, "vicuna7b"),
                                           ("rella", {"prompt": "rella", "tuning": "lora"}, 0.71, "vicuna7b"),
                                           ("rella", {"prompt": "tallrec", "tuning": "lora"}, 0.72, "vicuna7b"),
                                           ("rella", {"prompt": "rella", "tuning": "zero-shot"}, 0.55, "smollm2")]:
        r = record(ML, method, auc, 0.6, 0.8, backbone=backbone)
        r["config"]["options"] = r["options"] = options
        records.append(r)
    (table,) = build_tables(2, records)
    beyond = {row[1]: row[2] for row in table.rows[-4:]}
    assert beyond == {"BinLLM": "0.7000", "ReLLa": "0.7100", "ReLLa (retrieval only)": "0.7200",
                      "ReLLa zero-shot †": "0.5500"}
    assert not any(note.startswith("no record yet") for note in table.notes)


def test_table_ii_seeds_missing_cells_and_one_table_per_backbone():
    records = [record(ML, "mf", 0.60, 0.60, 0.80, seed=0), record(ML, "mf", 0.70, 0.62, 0.84, seed=1),
               record(ML, "tallrec", 0.65, 0.61, 0.82, backbone="minilm"),
               record(ML, "tallrec", 0.66, 0.62, 0.83, backbone="tiny-llama")]
    tables = build_tables(2, records)
    assert [t.title for t in tables] == ["Table II: overall performance (backbone minilm)",
                                         "Table II: overall performance (backbone tiny-llama)"]
    rows = {r[1]: r[2:] for r in tables[0].rows}
    assert rows["MF"] == ["0.6500 ± 0.0707", "0.6100 ± 0.0141", "0.8200 ± 0.0283", "-"]  # no CoLLM-MF: no Rel. Imp.
    assert rows["TALLRec"] == ["0.6500", "0.6100", "0.8200", "-"] and rows["DIN"] == ["-"] * 4


def test_table_ii_shows_icl_from_another_backbone_marked_when_its_own_cannot_run_it():
    tiny = record(ML, "icl", 0.51, 0.50, 0.81, backbone="tiny-llama")
    tiny["meaningless"] = True
    records = [record(ML, "tallrec", 0.65, 0.61, 0.82, backbone="minilm"),
               record(ML, "collm", 0.70, 0.66, 0.85, encoder="mf", backbone="minilm", strategy="default"), tiny]
    (table,) = build_tables(2, records)  # one table: tiny-llama only ran the borrowing row
    assert table.title == "Table II: overall performance (backbone minilm)"
    rows = {r[1]: r[2:] for r in table.rows}
    assert rows["ICL †"] == ["0.5100", "0.5000", "0.8100", "-"]  # not comparable: no Rel. Imp.
    assert rows["TALLRec"][3] == "7.9%"  # ((0.70-0.65)/0.65 + (0.66-0.61)/0.61) / 2
    assert ("† ICL: no run on this table's backbone (it needs a language-model head); shown from another "
            "backbone (ml-1m: tiny-llama), not comparable, no Rel. Imp.") in table.notes
    assert "random-weight backbone, numbers meaningless: ICL †" not in table.notes
    assert "random-weight backbone, numbers meaningless: ICL" in table.notes
    # a backbone that ran ICL itself shows its own run, unmarked
    own = build_tables(2, records + [record(ML, "icl", 0.55, 0.54, 0.80, backbone="minilm")], "minilm")[0]
    assert {r[1]: r[2:] for r in own.rows}["ICL"][:3] == ["0.5500", "0.5400", "0.8000"]


def test_table_iii_ensembles():
    def members(*pairs):
        return [{"label": label, "backbone": backbone} for label, backbone in pairs]

    records = []
    for dataset, (mf, tallrec, collm, ens1, ens2) in ((ML, (0.6482, 0.7097, 0.7295, 0.7239, 0.7364)),
                                                       (BOOK, (0.7134, 0.7375, 0.8109, 0.7782, 0.8112))):
        records += [record(dataset, "mf", mf, 0.6), record(dataset, "tallrec", tallrec, 0.6, backbone="vicuna7b"),
                    record(dataset, "collm", collm, 0.6, encoder="mf", backbone="vicuna7b", strategy="default"),
                    record(dataset, "ensemble", ens1, 0.6, label="mf+tallrec",
                           members=members(("mf", None), ("tallrec", "vicuna7b"))),
                    record(dataset, "ensemble", ens2, 0.6, label="collm-mf+mf",
                           members=members(("collm-mf", "vicuna7b"), ("mf", None)))]
    (table,) = build_tables(3, records)
    assert table.headers == ["Dataset", "Single: MF", "Single: TALLRec", "Single: CoLLM-MF",
                             "Ensemble: MF+TALLRec", "Ensemble: MF+CoLLM-MF"]
    assert table.rows == [["amazon-book", "0.7134", "0.7375", "0.8109", "0.7782", "0.8112"],
                          ["ml-1m", "0.6482", "0.7097", "0.7295", "0.7239", "0.7364"]]
    assert table.notes[0] == "Ensemble: the average of the two runs' saved scores (normalize: sigmoid)"


def test_table_iv_ablation_markdown():
    records = [record(ML, "collm", 0.7295, 0.6875, encoder="mf", backbone="vicuna7b", strategy="default"),
               record(ML, "tallrec", 0.7097, 0.6818, backbone="vicuna7b"),
               record(ML, "ui-token", 0.7214, 0.6563, backbone="vicuna7b"),
               record(BOOK, "collm", 0.8133, 0.6314, encoder="mf", backbone="vicuna7b", strategy="default"),
               record(BOOK, "tallrec", 0.7375, 0.5983, backbone="vicuna7b")]
    expected = "\n".join([
        "### Table IV: ablation of the CIE module (backbone vicuna7b)",
        "",
        "| Methods     | amazon-book AUC   | amazon-book UAUC   | ml-1m AUC   | ml-1m UAUC   |",
        "|-------------|-------------------|--------------------|-------------|--------------|",
        "| CoLLM-MF    | 0.8133            | 0.6314             | 0.7295      | 0.6875       |",
        "| w/o CIE     | 0.7375            | 0.5983             | 0.7097      | 0.6818       |",
        "| w/ UI-token | -                 | -                  | 0.7214      | 0.6563       |",
        "",
        "- w/o CIE is TALLRec; w/ UI-token replaces the CIE by per-user and per-item tokens",
        "- amazon-book: evaluated on all 100 test rows",
        "- ml-1m: evaluated on all 100 test rows",
        "",
    ])
    assert render_tables(4, records) == expected


def test_table_v_strategies():
    paper = {"default": (0.7295, 0.6875), "t1": (0.7360, 0.6946), "t2": (0.7418, 0.6906), "t3": (0.7131, 0.6661)}
    records = [record(ML, "collm", auc, uauc, encoder="mf", backbone="vicuna7b", strategy=s)
               for s, (auc, uauc) in paper.items()]
    records.append(record(ML, "collm", 0.99, 0.99, encoder="lightgcn", backbone="vicuna7b", strategy="t1"))  # not MF
    (table,) = build_tables(5, records)
    assert table.headers == ["Methods", "ml-1m AUC", "ml-1m UAUC"]
    assert table.rows == [["Default", "0.7295", "0.6875"], ["T1", "0.7360", "0.6946"],
                          ["T2", "0.7418", "0.6906"], ["T3", "0.7131", "0.6661"]]


def test_table_vi_costs():
    records = [record(ML, "tallrec", 0.7, 0.6, backbone="vicuna7b", train=32 * 60, infer=72),
               record(ML, "collm", 0.7, 0.6, encoder="mf", backbone="vicuna7b", strategy="default", train=36 * 60,
                      infer=82),
               record(BOOK, "tallrec", 0.7, 0.6, backbone="vicuna7b", train=354 * 60, infer=360),
               record(BOOK, "collm", 0.7, 0.6, encoder="mf", backbone="vicuna7b", strategy="default",
                      train=418 * 60, infer=398)]
    (table,) = build_tables(6, records)
    assert table.headers == ["Methods", "Train time amazon-book", "Train time ml-1m",
                             "Inference time amazon-book", "Inference time ml-1m"]
    assert table.rows == [["TALLRec", "354.0min", "32.0min", "360.0s", "72.0s"],
                          ["CoLLM-MF", "418.0min", "36.0min", "398.0s", "82.0s"],
                          ["Δ", "18%", "12%", "11%", "14%"]]   # the paper rounds 12.5% up to 13%
    assert table.notes[1] == "measured on: cuda:A100"


def test_table_vii_other_backbone_with_seeds():
    records = [record(ML, "mf", 0.6482, 0.6361),
               record(ML, "tallrec", 0.70, 0.66, backbone="qwen2-1.5b", seed=0),
               record(ML, "tallrec", 0.71, 0.67, backbone="qwen2-1.5b", seed=1),
               record(ML, "collm", 0.7354, 0.6950, encoder="mf", backbone="qwen2-1.5b", strategy="default"),
               record(ML, "collm", 0.5, 0.5, encoder="mf", backbone="qwen2-1.5b", strategy="default", rows=10,
                      sampled=True)]   # newer, another configuration (a sample): shown, and said
    (table,) = build_tables(7, records, backbone="qwen2-1.5b")
    assert table.title == "Table VII: performance on another backbone (backbone qwen2-1.5b)"
    assert table.rows == [["MF", "0.6482", "0.6361"], ["TALLRec", "0.7050 ± 0.0071", "0.6650 ± 0.0071"],
                          ["CoLLM-MF", "0.5000", "0.5000"]]
    assert any("not comparable" in n for n in table.notes)
    assert "CoLLM-MF on ml-1m: 2 configurations found, the newest shown" in table.notes


def test_formats_and_bad_numbers():
    records = paper_table_ii()
    assert json.loads(render_tables(2, records, "json"))[0]["rows"][0][1] == "MF"
    assert render_tables(2, records, "csv").splitlines()[1].startswith("Table II: overall performance")
    with pytest.raises(UserError, match="2..7"):
        render_tables(8, records)


def test_cli_table_and_figure(tmp_path, capsys):
    from collm_bench.cli import main
    from collm_bench.records.store import write_record

    for i, rec in enumerate(paper_table_ii()):
        (tmp_path / str(i)).mkdir()
        write_record(tmp_path / str(i), rec)
    try:
        main(["leaderboard", "--runs", str(tmp_path), "--table", "2"])
    except SystemExit as exc:
        assert exc.code == 0
    assert re.search(r"\| Collab\. +\| MF +\| 0\.6482", capsys.readouterr().out)
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "--runs", str(tmp_path), "--figure", "3"])
    assert exit_.value.code == 2 and "--figure needs --output" in capsys.readouterr().err


def test_single_seed_cells_show_their_recorded_interval_and_seeds_do_not():
    one = record(ML, "tallrec", 0.7097, 0.6818, backbone="vicuna7b")
    one["intervals"] = {"auc": [0.70, 0.72], "uauc": [0.67, 0.69], "level": 0.95, "resamples": 1000}
    seeds = [record(ML, "mf", auc, 0.6, seed=s) for s, auc in enumerate((0.64, 0.66))]
    for r in seeds:
        r["intervals"] = {"auc": [0.6, 0.7], "uauc": [0.5, 0.7]}
    table = build_tables(7, [one, *seeds])[0]
    by_name = {line[0]: line for line in table.rows}
    assert by_name["TALLRec"][1:3] == ["0.7097 (0.7000-0.7200)", "0.6818 (0.6700-0.6900)"]
    assert by_name["MF"][1] == "0.6500 ± 0.0141"  # two seeds: mean ± std, no interval
    assert "in brackets: the interval of a single seed's AUC / UAUC by a bootstrap over users (95%, 1,000 resamples); " \
           "a cell of several seeds shows mean ± std across seeds instead" in table.notes
    plain = build_tables(7, [record(ML, "mf", 0.65, 0.6)])[0]
    assert not any("in brackets" in note for note in plain.notes)
