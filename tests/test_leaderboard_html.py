"""The HTML leaderboard page: static, escaped, sortable, with intervals, warm/cold bars and a
configuration link per row; rendered in headless Chromium when it is installed (Debian's
``chromium`` package), which runs the page's own script."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from collm_bench import UserError
from collm_bench.reporting.html import render_html, write_site
from collm_bench.api.registry import load_registry


def _record(method, seed, auc, *, label=None, intervals=True, warm=0.8):
    run_id = f"toy__{method}__seed{seed}"
    return {
        "run_id": run_id, "method": method, "encoder": method, "backbone": None, "seed": seed, "label": label,
        "dataset": {"name": "toy"}, "config": {"method": method, "seed": seed, "options": {"dim": 8}},
        "metrics": {"overall": {"auc": auc, "uauc": auc - 0.05, "ndcg": 0.8},
                    "warm": {"auc": warm}, "cold": {"auc": auc - 0.1}},
        "intervals": {"auc": [auc - 0.02, auc + 0.02], "uauc": [auc - 0.07, auc - 0.03]} if intervals else None,
        "evaluation": {"split": "test", "rows": 10, "total_rows": 10, "sampled": False},
        "timings": {"train_seconds": 10.0 * (seed + 1), "inference_seconds": 0.5},
    }


RECORDS = [_record("mf", 0, 0.60), _record("din", 0, 0.75), _record("sasrec", 0, 0.70, warm=0.5),
           _record("lightgcn", 0, 0.65, intervals=False), _record("lightgcn", 1, 0.67, intervals=False)]


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _first_table(page: str) -> str:
    return page.split("<h3>")[0]


def test_rows_are_ranked_with_intervals_bars_and_config_links(registry):
    page, configs = render_html(RECORDS, registry=registry)
    names = re.findall(r'<td class=name data-value="([^"]+)">', _first_table(page))
    assert names == ["din", "sasrec", "lightgcn", "mf"]  # ranked by AUC (lightgcn: mean 0.66)
    assert '0.7500<span class="iv">[0.7300, 0.7700]</span>' in page             # one seed: its interval
    assert "0.6600<span class=sd>± 0.0141 sd</span>" in page                     # two seeds: their sd, no interval
    assert 'class="bar warm" style="width:80.0%"' in page and 'class="bar warm" style="width:50.0%"' in page
    assert 'href="configs/toy__lightgcn__seed1.json">seed 1</a>' in page
    assert set(configs) == {r["run_id"] for r in RECORDS}
    assert "http" not in page  # nothing fetched from anywhere
    # the second table: the other metrics and the times, the same rows
    assert re.findall(r'<td class=name data-value="([^"]+)">', page.split("<h3>")[1]) == names
    assert "<th data-column=\"Train s\">" in page.split("<h3>")[1] and "Train s" not in _first_table(page)


def test_the_words_under_a_table_match_what_it_shows(registry):
    import html

    page, _ = render_html(RECORDS, registry=registry)
    page = html.unescape(page)
    assert "[low, high]: the 95% interval of a single seed's run" in page   # mf, din, sasrec
    assert "± x sd: the standard deviation across the seeds of a row" in page   # lightgcn
    assert "≈" not in page.split("<table")[0].split("<h2>")[1] or " ≈</td>" in page
    one_seed, _ = render_html([_record("mf", 0, 0.6)], registry=registry)
    one_seed = html.unescape(one_seed)
    assert "± x sd" not in one_seed and "in brackets" not in one_seed.lower()
    assert "≈:" not in one_seed                                                  # no row marked: not defined


def test_below_chance_is_drawn_unlike_missing(registry):
    below = _record("mf", 0, 0.6, warm=0.3)
    below["metrics"]["cold"] = {}
    page, _ = render_html([below], registry=registry)
    assert 'class="bar warm below" style="width:30.0%"' in page and "(below chance)" in page
    assert "cold: n/a" in page


def test_a_row_on_another_backbone_is_marked_and_the_title_names_dataset_and_backbones(registry):
    llm = [dict(_record("tallrec", 0, 0.7), backbone="minilm", encoder=None),
           dict(_record("collm", 0, 0.72), backbone="minilm"),
           dict(_record("icl", 0, 0.5), backbone="smollm2", encoder=None)]
    page, _ = render_html(llm, registry=registry)
    assert 'data-value="icl †"' in page and "†: on another backbone (smollm2) than the other LLM rows" in page
    assert "<title>collm-bench leaderboard: toy (minilm, smollm2)</title>" in page


def test_a_second_board_never_overwrites_the_first(tmp_path):
    write_site(RECORDS, tmp_path / "site", source="paper")
    write_site(RECORDS, tmp_path / "site", source="paper")                          # its own page: updated
    with pytest.raises(UserError, match="is the page of paper, not of ml-100k: give each board its own"):
        write_site(RECORDS, tmp_path / "site", source="ml-100k")


def test_record_text_is_escaped(registry):
    page, _ = render_html([_record("mf", 0, 0.6, label="<script>alert(1)</script>")], registry=registry)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_site_folder_holds_the_page_and_the_configs(tmp_path):
    page = write_site(RECORDS, tmp_path / "site", title="toy boards", source="toy")
    assert page == tmp_path / "site" / "index.html"
    assert json.loads((tmp_path / "site" / "configs" / "toy__mf__seed0.json").read_text())["options"] == {"dim": 8}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _dom(url: str) -> str:
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install chromium)")
def test_the_page_renders_and_sorts_in_headless_chromium(tmp_path):
    page = write_site(RECORDS, tmp_path / "site")
    shown = _dom(page.as_uri())
    assert re.findall(r'<td class="name" data-value="([^"]+)">', shown)[:4] == ["din", "sasrec", "lightgcn", "mf"]
    by_name = _dom(page.as_uri() + "#sort=Method&order=asc")  # the page's script sorts on load
    assert re.findall(r'<td class="name" data-value="([^"]+)">', by_name)[:4] == ["din", "lightgcn", "mf", "sasrec"]
    assert 'data-column="Method" class="name sorted-asc"' in by_name
    by_time = _dom(page.as_uri() + "#sort=Train s")  # descending by default
    assert re.findall(r'<td class="name" data-value="([^"]+)">', by_time.split("<h3>")[1])[0] == "lightgcn"


PROBE = """<!doctype html><html><body style="margin:0">
<iframe id=f src="{page}" style="width:{width}px;height:900px;border:0"></iframe><div id=result>pending</div>
<script>document.getElementById("f").addEventListener("load", () => {{
  const d = document.getElementById("f").contentDocument.documentElement;
  document.getElementById("result").textContent = d.scrollWidth + " " + d.clientWidth; }});</script></body></html>"""
COMMITTED_RUNS = sorted(p for p in (ROOT / "leaderboards" / "runs").iterdir() if p.is_dir())


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (apt-get install chromium)")
@pytest.mark.parametrize("runs", COMMITTED_RUNS, ids=[p.name for p in COMMITTED_RUNS])
def test_each_committed_page_reads_at_1400_px_without_scrolling_sideways(tmp_path, runs):
    from collm_bench.records.store import iter_records

    page = write_site((r for _, r in iter_records(runs, report=lambda m: None)), tmp_path / runs.name, source=runs.name)
    (tmp_path / "probe.html").write_text(PROBE.format(page=f"{runs.name}/index.html", width=1400))
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                           "--virtual-time-budget=5000", "--dump-dom", (tmp_path / "probe.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    scroll, client = map(int, re.search(r'<div id="result">(\d+) (\d+)</div>', proc.stdout).groups())
    assert scroll <= client, f"{page}: {scroll} px wide in a {client} px window"
