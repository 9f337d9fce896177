"""The HTML leaderboard page: static, escaped, sortable, with intervals, warm/cold bars and a
configuration link per row; rendered in headless Chromium when it is installed (Debian's
``chromium`` package), which runs the page's own script."""
import json
import re
import shutil
import subprocess

import pytest

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


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_rows_are_ranked_with_intervals_bars_and_config_links(registry):
    page, configs = render_html(RECORDS, registry=registry)
    names = re.findall(r'<td class=name data-value="([^"]+)">', page)
    assert names == ["din", "sasrec", "lightgcn", "mf"]  # ranked by AUC (lightgcn: mean 0.66)
    assert '0.7500<span class="iv">0.7300&ndash;0.7700</span>' in page
    assert "0.6600 ± 0.0141" in page  # two seeds: mean ± std, no interval
    assert 'class="bar warm" style="width:60.0%"' in page and 'class="bar warm" style="width:0.0%"' in page
    assert 'href="configs/toy__lightgcn__seed1.json">seed 1</a>' in page
    assert set(configs) == {r["run_id"] for r in RECORDS}
    assert "http" not in page  # nothing fetched from anywhere


def test_record_text_is_escaped(registry):
    page, _ = render_html([_record("mf", 0, 0.6, label="<script>alert(1)</script>")], registry=registry)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_site_folder_holds_the_page_and_the_configs(tmp_path):
    page = write_site(RECORDS, tmp_path / "site", title="toy boards")
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
    assert re.findall(r'<td class="name" data-value="([^"]+)">', shown) == ["din", "sasrec", "lightgcn", "mf"]
    by_name = _dom(page.as_uri() + "#sort=Method&order=asc")  # the page's script sorts on load
    assert re.findall(r'<td class="name" data-value="([^"]+)">', by_name) == ["din", "lightgcn", "mf", "sasrec"]
    assert 'data-column="Method" class="name sorted-asc"' in by_name
    by_time = _dom(page.as_uri() + "#sort=Train s")  # descending by default
    assert re.findall(r'<td class="name" data-value="([^"]+)">', by_time)[0] == "lightgcn"
