"""The paper's claims checked on records: the paper's own Table II numbers make every Table II
claim hold; one changed cell flips exactly its claims; gaps inside the noise are marked, and
missing noise or rows are said."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))   # study code lives beside its scripts
from paper_claims_lib import _narrow, check_claims, overview_cell, render_claims, render_overview  # noqa: E402
from collm_bench.records.record import RunRecord  # noqa: E402

from test_paper_tables import ML, paper_table_ii, record

FIGURE3 = ("Warm", "Cold")


def _verdicts(records):
    return {v.claim: v for v in check_claims([RunRecord(r) for r in records], ML, "vicuna7b")}


def test_the_papers_own_numbers_make_every_table_ii_claim_hold():
    verdicts = _verdicts(paper_table_ii())
    figure3 = {c for c in verdicts if c.startswith(FIGURE3)}
    assert len(verdicts) == 11 and len(figure3) == 4
    assert all(verdicts[c].holds is None and verdicts[c].word == "not measured" for c in figure3)
    assert all(v.word == "holds" for c, v in verdicts.items() if c not in figure3), verdicts
    assert verdicts["Prompt4NR < TALLRec < CoLLM-MF (AUC, UAUC)"].evidence == (
        "AUC: Prompt4NR 0.7071 <? TALLRec 0.7097 <? CoLLM-MF 0.7295; "
        "UAUC: Prompt4NR 0.6739 <? TALLRec 0.6818 <? CoLLM-MF 0.6875")  # ?: no noise recorded
    best = verdicts["A CoLLM version beats every baseline in AUC and UAUC"].evidence
    assert best == ("best baselines: AUC DIN 0.7166, UAUC SASRec 0.6884; beaten in both by "
                    "CoLLM-SASRec, CoLLM-DIN")  # CoLLM-MF: UAUC .6875 < .6884


def test_one_changed_cell_flips_its_claims_only():
    records = [r for r in paper_table_ii() if r["method"] != "tallrec"]
    records.append(record(ML, "tallrec", 0.6000, 0.6818, 0.8711, backbone="vicuna7b"))
    verdicts = _verdicts(records)
    flipped = {c for c, v in verdicts.items() if v.holds is False}
    assert flipped == {"TALLRec beats MF, LightGCN and SASRec (AUC)", "Prompt4NR < TALLRec < CoLLM-MF (AUC, UAUC)"}
    assert "Prompt4NR 0.7071 >=? TALLRec 0.6000" in verdicts["Prompt4NR < TALLRec < CoLLM-MF (AUC, UAUC)"].evidence


def test_noise_marks_from_seeds_and_from_bootstrap_intervals():
    records = [r for r in paper_table_ii() if r["method"] not in ("mf", "tallrec", "collm")]
    # MF over three seeds (std .02 on every metric)
    for seed, shift in enumerate((-0.02, 0.0, 0.02)):
        records.append(record(ML, "mf", 0.65 + shift, 0.63 + shift, seed=seed,
                              warm={"auc": 0.70 + shift, "uauc": 0.60 + shift},
                              cold={"auc": 0.50 + shift, "uauc": 0.50 + shift}))
    tallrec = record(ML, "tallrec", 0.66, 0.68, backbone="vicuna7b", warm={"auc": 0.69, "uauc": 0.62},
                     cold={"auc": 0.60, "uauc": 0.55})
    tallrec["intervals"] = {"auc": [0.60, 0.72], "uauc": [0.67, 0.69]}   # half-widths .06 and .01
    collm = record(ML, "collm", 0.73, 0.69, encoder="mf", backbone="vicuna7b", strategy="default",
                   warm={"auc": 0.78, "uauc": 0.66}, cold={"auc": 0.61, "uauc": 0.54})
    collm["intervals"] = {"auc": [0.72, 0.74], "uauc": [0.68, 0.70]}
    records += [tallrec, collm]
    verdicts = _verdicts(records)
    # TALLRec .66 vs MF .65: gap .01 < TALLRec's .06 -> ~; CoLLM .73 vs TALLRec .66: .07 > .06 -> plain
    assert "AUC: MF 0.6500 <~ TALLRec 0.6600" in verdicts["TALLRec beats MF, LightGCN and SASRec (AUC)"].evidence
    assert "AUC: TALLRec 0.6600 < CoLLM-MF 0.7300" in verdicts["Every CoLLM-X beats TALLRec (AUC)"].evidence
    # warm and cold cells of one seed have no interval: marked ?, several seeds give MF its std
    warm = verdicts["Warm rows: TALLRec < MF < CoLLM-MF (AUC; Figure 3)"]
    assert warm.holds and warm.evidence == "warm AUC: TALLRec 0.6900 <? MF 0.7000 <? CoLLM-MF 0.7800"
    assert verdicts["Warm rows: MF < TALLRec < CoLLM-MF (UAUC; Figure 3)"].holds
    assert verdicts["Cold rows: TALLRec and CoLLM-MF beat MF (AUC, UAUC; Figure 3)"].holds
    text = render_claims(list(verdicts.values()), "ML-1M")
    assert text.startswith("### ML-1M\n\n| claim | verdict | values |") and "| holds |" in text


def test_missing_rows_are_said():
    verdicts = _verdicts([r for r in paper_table_ii() if r["method"] != "icl"])
    icl = verdicts["ICL is the weakest LLMRec method (AUC, UAUC)"]
    assert icl.holds is None and icl.word == "not measured" and "rows missing" in icl.evidence
    best = verdicts["A CoLLM version beats every baseline in AUC and UAUC"]
    assert best.word == "holds on the rows present" and best.evidence.endswith("; missing: ICL")
    partial = _verdicts([r for r in paper_table_ii() if r["method"] != "lightgcn"])
    assert partial["TALLRec beats MF, LightGCN and SASRec (AUC)"].word == "holds on the rows present"


def test_narrow_verdicts_and_the_overview_cell():
    """A claim holding through a gap inside the noise, or failing only on such gaps, is narrow."""
    mf = [record(ML, "mf", 0.65 + shift, 0.63, seed=seed) for seed, shift in enumerate((-0.02, 0.0, 0.02))]

    def tallrec_beats(auc):
        tallrec = record(ML, "tallrec", auc, 0.60, backbone="vicuna7b")
        tallrec["intervals"] = {"auc": [auc - 0.01, auc + 0.01]}
        return _verdicts(mf + [tallrec])["TALLRec beats MF, LightGCN and SASRec (AUC)"]

    close_win, close_loss, clear_loss = tallrec_beats(0.66), tallrec_beats(0.64), tallrec_beats(0.50)
    assert (close_win.holds, close_win.partial, close_win.narrow) == (True, True, True)   # .01 < std .02
    assert overview_cell(close_win) == "holds* ~"
    assert (close_loss.holds, close_loss.narrow, overview_cell(close_loss)) == (False, True, "no ~")
    assert (clear_loss.narrow, overview_cell(clear_loss)) == (False, "no")
    assert overview_cell(_verdicts(mf)["DIN beats TALLRec (AUC)"]) == "-"
    # cells without noise (?) are never close: nothing on the paper's own table is narrow
    assert not any(v.narrow for v in _verdicts(paper_table_ii()).values())
    table = render_overview([("A", [close_win]), ("B", [clear_loss])])
    assert table.splitlines() == ["| claim | A | B |", "|---|---|---|",
                                  "| TALLRec beats MF, LightGCN and SASRec (AUC) | holds* ~ | no |"]


def test_narrow_needs_every_pass_clear_or_every_failure_close():
    # (holds, within noise) per comparison
    assert _narrow([(True, False), (True, True)]) and not _narrow([(True, False), (True, False)])
    assert _narrow([(False, True), (True, False)]) and not _narrow([(False, True), (False, False)])


def test_best_collm_verdict_is_narrow_when_no_winner_is_clear():
    records = [r for r in paper_table_ii() if r["method"] != "collm"]   # best: DIN .7166 AUC, SASRec .6884 UAUC
    for name in ("din", "sasrec"):
        row = next(r for r in records if r["method"] == name)
        row["intervals"] = {m: [v - 0.005, v + 0.005] for m, v in row["metrics"]["overall"].items()
                            if m in ("auc", "uauc")}

    def best(auc, uauc):
        collm = record(ML, "collm", auc, uauc, encoder="mf", backbone="vicuna7b", strategy="default")
        collm["intervals"] = {"auc": [auc - 0.005, auc + 0.005], "uauc": [uauc - 0.005, uauc + 0.005]}
        return _verdicts(records + [collm])["A CoLLM version beats every baseline in AUC and UAUC"]

    clear, close, close_loss, clear_loss = best(0.75, 0.72), best(0.72, 0.72), best(0.7150, 0.72), best(0.70, 0.72)
    assert (clear.holds, clear.narrow) == (True, False)
    assert (close.holds, close.narrow) == (True, True)        # AUC .72 vs DIN .7166: inside .005
    assert (close_loss.holds, close_loss.narrow) == (False, True)
    assert (clear_loss.holds, clear_loss.narrow) == (False, False)
