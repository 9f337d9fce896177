"""The leaderboards as one static HTML page (``collm-bench leaderboard --format html --output
site/``): no server and no network, so it opens from a file, a CI artifact or any static host.

Each dataset is a table ranked by AUC, as the Markdown boards: intervals beside AUC and UAUC,
``≈`` on rows a paired bootstrap cannot tell from the best, a warm/cold bar per row (the paper's
Figure 3 in one glance) and a link from each row to its configuration (``configs/<run id>.json``,
written beside the page). Clicking a column header sorts by it (a few lines of inline script);
``#sort=<column>`` in the address sorts on load, so a link can share a view.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable

from collm_bench.reporting.leaderboard import (TAIL, collect, columns, head_note, interval_note, ranking_note,
                                              seeds_cell)
from collm_bench.records.store import mean_of, mean_std
from collm_bench.records.record import RunRecord

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:2rem 0 .25rem}
p.note{color:#57606a;max-width:70rem;font-size:.85rem;margin:.25rem 0 .75rem}
table{border-collapse:collapse;font-size:.85rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #d0d7de;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f6f8fa;position:sticky;top:0;user-select:none}
th:hover{background:#eaeef2}th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.name,th.name,td.backbone{text-align:left}td.rank{color:#57606a}
.iv{color:#57606a;font-size:.75rem;margin-left:.3rem}
.bars{display:inline-block;width:8rem;vertical-align:middle}
.bar{height:.45rem;margin:.1rem 0;border-radius:2px}
.warm{background:#2f81f7}.cold{background:#d29922}
.legend span{display:inline-block;width:.8rem;height:.5rem;margin:0 .25rem 0 .75rem;border-radius:2px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
"""

SCRIPT = """
function sortBy(table, index, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => r.cells[index].dataset.value;
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const nx = parseFloat(x), ny = parseFloat(y);
    const missing = v => v === undefined || v === "";
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;  // rows without a value stay last
    const c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
    return descending ? -c : c;
  });
  rows.forEach(r => body.appendChild(r));
  table.querySelectorAll("th").forEach((th, i) => {
    th.classList.toggle("sorted-asc", i === index && !descending);
    th.classList.toggle("sorted-desc", i === index && descending);
  });
}
document.querySelectorAll("table.board").forEach(table => {
  table.querySelectorAll("th").forEach((th, index) => th.addEventListener("click", () => {
    sortBy(table, index, !th.classList.contains("sorted-desc"));
  }));
});
const wanted = new URLSearchParams(location.hash.slice(1)).get("sort");
if (wanted) {
  document.querySelectorAll("table.board").forEach(table => {
    const index = Array.from(table.querySelectorAll("th")).findIndex(th => th.dataset.column === wanted);
    const descending = new URLSearchParams(location.hash.slice(1)).get("order") !== "asc";
    if (index >= 0) sortBy(table, index, descending);
  });
}
"""


def _cell(row: dict[str, Any], column: str) -> tuple[str, str]:
    """(sort value, shown HTML) of one metric or timing cell."""
    values = row[column]
    if column == "Seeds":
        return str(len(values)), html.escape(seeds_cell(values))
    if column in row.get("undefined", {}):
        return "", f'<span title="{html.escape(row["undefined"][column])}">undefined</span>'   # said, not blank
    digits = 1 if column in ("Train s", "Infer s") else 4
    mean = mean_of(values)
    shown = html.escape(mean_std(values, digits))
    bounds = (row.get("intervals") or {}).get(column.lower()) if column in ("AUC", "UAUC") else None
    if bounds and mean is not None:
        shown += f'<span class="iv">{bounds[0]:.4f}&ndash;{bounds[1]:.4f}</span>'
    return ("" if mean is None else f"{mean:.6f}"), shown


def _bars(row: dict[str, Any]) -> str:
    """Warm and cold AUC as two bars on a 0.5-1.0 scale (chance to perfect)."""
    out = []
    for subset in ("Warm AUC", "Cold AUC"):
        value = mean_of(row[subset])
        width = 0.0 if value is None else max(0.0, min(1.0, (value - 0.5) / 0.5)) * 100
        label = "-" if value is None else f"{value:.4f}"
        out.append(f'<div class="bar {subset.split()[0].lower()}" style="width:{width:.1f}%" '
                   f'title="{subset}: {label}"></div>')
    return f'<div class="bars">{"".join(out)}</div>'


def render_html(records: Iterable[RunRecord | dict[str, Any]], *, title: str = "collm-bench leaderboards",
                registry=None) -> tuple[str, dict[str, dict[str, Any]]]:
    """The page, and the configurations it links (``run id -> record config``)."""
    records = [RunRecord.of(r) for r in records]
    by_id = {r.run_id: r for r in records}
    tables = collect(records, registry)
    configs: dict[str, dict[str, Any]] = {}
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             '<p class="note legend">Click a column to sort. Warm / cold AUC, from 0.5 (chance) to 1:'
             '<span class="warm"></span>warm<span class="cold"></span>cold</p>']
    for dataset, rows in tables.items():
        names = columns(rows)
        metrics = [c for c in names[2:] if c not in TAIL]
        evaluated = "; ".join(sorted({row["evaluated"] for row in rows}))
        note = interval_note(rows) + head_note(r for r in records if r.dataset == dataset)
        parts.append(f"<h2>{html.escape(dataset)}</h2><p class=note>Evaluated on {html.escape(evaluated)}. "
                     f"{html.escape(ranking_note(rows))}{html.escape(note)}</p>")
        head = ["#", "Method", "Backbone", *metrics, "Warm / cold", *TAIL, "Config"]
        parts.append("<table class=board><thead><tr>" + "".join(
            f'<th data-column="{html.escape(h)}"{" class=name" if h in ("Method", "Backbone", "Config") else ""}>'
            f'{html.escape(h)}</th>'
            for h in head) + "</tr></thead><tbody>")
        for rank, row in enumerate(rows, 1):
            run_ids = row["runs"]
            configs.update({run_id: by_id[run_id].config for run_id in run_ids if run_id in by_id})
            cells = [f'<td class=rank data-value="{rank}">{rank}</td>',
                     f'<td class=name data-value="{html.escape(row["Method"])}">{html.escape(row["Method"])}</td>',
                     f'<td class=backbone data-value="{html.escape(row["Backbone"])}">{html.escape(row["Backbone"])}</td>']
            for column in [*metrics, None, *TAIL]:
                if column is None:
                    warm = mean_of(row["Warm AUC"])
                    cells.append(f'<td data-value="{"" if warm is None else f"{warm:.6f}"}">{_bars(row)}</td>')
                    continue
                value, shown = _cell(row, column)
                cells.append(f'<td data-value="{value}">{shown}</td>')
            links = " ".join(f'<a href="configs/{html.escape(run_id)}.json">{"config" if len(run_ids) == 1 else f"seed {seed}"}</a>'
                             for run_id, seed in zip(run_ids, row["Seeds"]))
            cells.append(f'<td class=name data-value="">{links}</td>')
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    if not tables:
        parts.append("<p>no run records found</p>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts), configs


def write_site(records: Iterable[RunRecord | dict[str, Any]], folder: str | Path, *,
               title: str = "collm-bench leaderboards") -> Path:
    """``folder/index.html`` and ``folder/configs/<run id>.json``; returns the page's path."""
    from collm_bench.data.format import atomic_path

    folder = Path(folder)
    page, configs = render_html(records, title=title)
    for run_id, config in configs.items():
        with atomic_path(folder / "configs" / f"{run_id}.json") as tmp:
            Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    with atomic_path(folder / "index.html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return folder / "index.html"
