"""Figures 3 and 4 are written as PNG from hand-made records."""
import pytest

from collm_bench import UserError

pytest.importorskip("matplotlib")

from collm_bench.reporting.paper_figures import figure_data, write_figure  # noqa: E402


def _record(method, auc, *, encoder=None, backbone="vicuna7b", strategy=None, seed=0, dataset="ml-1m"):
    return {"run_id": f"{dataset}__{method}__{strategy}__{backbone}__seed{seed}", "timings": {},
            "dataset": {"name": dataset}, "method": method, "encoder": encoder, "backbone": backbone, "seed": seed,
            "config": {"method": method, "seed": seed, "options": {"strategy": strategy} if strategy else None},
            "metrics": {"overall": {"auc": auc, "uauc": auc}, "warm": {"auc": auc + 0.05, "uauc": auc},
                        "cold": {"auc": auc - 0.05, "uauc": None}},
            "evaluation": {"rows": 10, "total_rows": 10, "sampled": False}, "date": f"2026-01-0{seed + 1}"}


def _records():
    out = [_record("mf", 0.65, encoder="mf", backbone=None), _record("tallrec", 0.70),
           _record("tallrec", 0.72, seed=1), _record("tallrec", 0.70, dataset="amazon-book")]
    out += [_record("collm", 0.73 + i / 100, encoder="mf", strategy=s) for i, s in enumerate(("default", "t1", "t2", "t3"))]
    return out


@pytest.mark.parametrize("number", [3, 4])
def test_figure_is_written_as_png_from_the_records(tmp_path, number):
    import json

    from PIL import Image

    path = write_figure(number, _records(), tmp_path / "figs" / f"fig{number}.png")
    image = Image.open(path)
    drawn = json.loads(image.info["Description"])
    rows = len({key.split("/")[0] for key in drawn})                     # one row of panels per dataset
    assert image.format == "PNG" and image.size == (1080, round(3.2 * 120 * rows))   # 9 x 3.2 in each, 120 dpi
    _, values, _, _ = figure_data(number, _records())
    expected = {f"{d}/{s}/{n}/{m}": round(sum(v) / len(v), 6) for (d, s, n, m), v in values.items() if v}
    assert drawn == expected                                             # every bar is a record's value


def test_figure_values_are_means_over_seeds():
    _, values, _, backbone = figure_data(3, _records())
    assert backbone == "vicuna7b"
    assert values["ml-1m", "warm", "TALLRec", "AUC"] == pytest.approx([0.75, 0.77])
    assert values["ml-1m", "cold", "TALLRec", "UAUC"] == []            # missing: no bar
    assert values["ml-1m", "warm", "CoLLM-MF", "AUC"] == pytest.approx([0.78])   # the default strategy


def test_several_backbones_need_a_choice(tmp_path):
    records = _records() + [_record("tallrec", 0.7, backbone="minilm")]
    with pytest.raises(UserError, match="pick one with --backbone"):
        write_figure(3, records, tmp_path / "f.png")
    with pytest.raises(UserError, match="no records for Figure 4"):
        write_figure(4, [_record("mf", 0.6, encoder="mf", backbone=None)], tmp_path / "f.png")
