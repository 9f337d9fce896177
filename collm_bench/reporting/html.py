"""The leaderboards as one static HTML page (``collm-bench leaderboard --format html --output
site/``): no server and no network, so it opens from a file, a CI artifact or any static host.

Each dataset is a table ranked by AUC, as the Markdown boards, narrow enough to read at 1,400 px
without scrolling sideways: AUC and UAUC with their uncertainty (a single seed's 95% interval in
brackets, a several-seed row's standard deviation as ``± sd``: two forms, each explained under the
table), ``≈`` on rows a paired bootstrap cannot tell from the best, ``†`` on an LLM row of another
backbone than the table's others, a warm/cold bar per row on a 0-1 scale with chance marked (a
value below 0.5 drawn as below chance, a missing one as ``n/a``), and a link to each row's
configuration (``configs/<run id>.json``). The other metrics and the times follow in a second
table. Clicking a column header sorts by it (a few lines of inline script); ``#sort=<column>``
in the address sorts on load, so a link can share a view. ``write_index`` links several pages.
"""
from __future__ import annotations

import html
import json
import re
import statistics
from pathlib import Path
from typing import Any, Iterable

from collm_bench.errors import UserError
from collm_bench.reporting.leaderboard import TAIL, collect, columns, head_note, ranking_note, seeds_cell
from collm_bench.records.store import mean_of
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
.sd{color:#57606a;font-size:.75rem;margin-left:.3rem;font-style:italic}
td.name{white-space:normal;max-width:30rem;min-width:10rem}
.bars{display:inline-block;width:8rem;vertical-align:middle;position:relative}
.bars::after{content:"";position:absolute;left:50%;top:0;bottom:0;border-left:1px dashed #8c959f}
.bar{height:.45rem;margin:.1rem 0;border-radius:2px}
.warm{background:#2f81f7}.cold{background:#d29922}.bar.below{background:#cf222e}
.na{color:#8c959f;font-size:.75rem}
h3{font-size:1rem;margin:1rem 0 .25rem}
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


UNCERTAINTY = {
    "interval": "[low, high]: the 95% interval of a single seed's run (bootstrap over users, {resamples} resamples)",
    "sd": "± x sd: the standard deviation across the seeds of a row (the Seeds column says how many)",
}
MAIN = ("AUC", "UAUC")   # the first table; the other metrics and the times go to the second


def _cell(row: dict[str, Any], column: str) -> tuple[str, str]:
    """(sort value, shown HTML) of one metric or timing cell."""
    values = row[column]
    if column == "Seeds":
        return str(len(values)), html.escape(seeds_cell(values))
    if column in row.get("undefined", {}):
        return "", f'<span title="{html.escape(row["undefined"][column])}">undefined</span>'   # said, not blank
    digits = 1 if column in ("Train s", "Infer s") else 4
    present = [v for v in values if v is not None]
    mean = mean_of(values)
    if mean is None:
        return "", '<span class=na>n/a</span>'
    shown = f"{mean:.{digits}f}"
    if len(present) > 1:   # several seeds: their spread, in a form unlike an interval
        shown += f'<span class=sd>± {statistics.stdev(present):.{digits}f} sd</span>'
    bounds = (row.get("intervals") or {}).get(column.lower()) if column in MAIN else None
    if bounds and len(present) == 1:
        shown += f'<span class="iv">[{bounds[0]:.4f}, {bounds[1]:.4f}]</span>'
    return f"{mean:.6f}", shown


def _bars(row: dict[str, Any]) -> str:
    """Warm and cold AUC as two bars on a 0-1 scale, chance (0.5) marked: a value below chance is
    drawn in red, a missing one is said (``n/a``), never an empty bar."""
    out = []
    for subset in ("Warm AUC", "Cold AUC"):
        value = mean_of(row[subset])
        kind = subset.split()[0].lower()
        if value is None:
            out.append(f'<div class=na title="{subset}: not available">{kind}: n/a</div>')
            continue
        width = max(0.0, min(1.0, value)) * 100
        below = " below" if value < 0.5 else ""
        out.append(f'<div class="bar {kind}{below}" style="width:{width:.1f}%" '
                   f'title="{subset}: {value:.4f}{" (below chance)" if below else ""}"></div>')
    return f'<div class="bars">{"".join(out)}</div>'


def _other_backbone(rows: list[dict[str, Any]]) -> dict[int, str]:
    """``†`` rows: LLM rows on another backbone than the table's most common one (row index ->
    that backbone), as the paper tables mark a row borrowed from another backbone."""
    names = [row["Backbone"].split(" (")[0] for row in rows]
    llm = [n for n in names if n != "-"]
    if len(set(llm)) < 2:
        return {}
    main = max(sorted(set(llm)), key=llm.count)
    return {i: n for i, n in enumerate(names) if n not in ("-", main)}


def page_title(records: list[RunRecord]) -> str:
    """A page's title: its datasets and its LLM backbones."""
    datasets = ", ".join(sorted({r.dataset for r in records})) or "no records"
    backbones = sorted({r.backbone for r in records if r.backbone})
    return f"collm-bench leaderboard: {datasets}" + (f" ({', '.join(backbones)})" if backbones else "")


def _notes(rows: list[dict[str, Any]], marked: dict[int, str], records: list[RunRecord], dataset: str) -> str:
    """The words under a table, for the marks and forms this table shows and no others."""
    evaluated = "; ".join(sorted({row["evaluated"] for row in rows}))
    notes = [f"Evaluated on {evaluated}.", ranking_note(rows)]
    if any((row.get("intervals") and len(row["Seeds"]) == 1) for row in rows):
        counts = {(r.intervals or {}).get("resamples") or 1000 for r in records if r.dataset == dataset}
        shown = sorted(f"{n:,}" if isinstance(n, int) else f"{n:g}" for n in counts)
        notes.append(UNCERTAINTY["interval"].format(resamples="/".join(shown)) + ".")
    if any(len(row["Seeds"]) > 1 for row in rows):
        notes.append(UNCERTAINTY["sd"] + ".")
    if any(row["Method"].endswith(" ≈") for row in rows):
        notes.append("≈: not significantly different from the best row's AUC (paired bootstrap on the same rows, 95%).")
    elif rows and len(rows[0]["Seeds"]) > 1 and any(row.get("intervals") for row in rows):
        notes.append("No row is marked ≈: the best row has several seeds, so there is no one run to pair with.")
    if marked:
        notes.append(f"†: on another backbone ({', '.join(sorted(set(marked.values())))}) than the other LLM rows: "
                     "not comparable with them.")
    head = head_note(r for r in records if r.dataset == dataset)
    return " ".join(n for n in notes if n) + head


def render_html(records: Iterable[RunRecord | dict[str, Any]], *, title: str | None = None, source: str = "",
                registry=None) -> tuple[str, dict[str, dict[str, Any]]]:
    """The page, and the configurations it links (``run id -> record config``). ``source`` (the
    records folder) is stamped in the page, so that ``write_site`` never writes over another's."""
    records = [RunRecord.of(r) for r in records]
    title = title or page_title(records)
    by_id = {r.run_id: r for r in records}
    tables = collect(records, registry)
    configs: dict[str, dict[str, Any]] = {}
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f'<meta name="collm-bench-source" content="{html.escape(source)}">'
             f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             '<p class="note legend">Click a column to sort. Warm / cold AUC on a 0-1 scale, the dashed line at '
             '0.5 (chance):<span class="warm"></span>warm<span class="cold"></span>cold'
             '<span class="bar below"></span>below chance</p>']
    for dataset, rows in tables.items():
        names = columns(rows)
        metrics = [c for c in names[2:] if c not in TAIL]
        main = [c for c in metrics if c in MAIN]
        other = [c for c in metrics if c not in MAIN] + ["Train s", "Infer s"]
        marked = _other_backbone(rows)
        shown_names = [row["Method"] + (" †" if i in marked else "") for i, row in enumerate(rows)]
        parts.append(f"<h2>{html.escape(dataset)}</h2>"
                     f"<p class=note>{html.escape(_notes(rows, marked, records, dataset))}</p>")
        head = ["#", "Method", "Backbone", *main, "Warm / cold", "Seeds", "Config"]
        parts.append(_table_head(head))
        for rank, row in enumerate(rows, 1):
            run_ids = row["runs"]
            configs.update({run_id: by_id[run_id].config for run_id in run_ids if run_id in by_id})
            name = shown_names[rank - 1]
            cells = [f'<td class=rank data-value="{rank}">{rank}</td>',
                     f'<td class=name data-value="{html.escape(name)}">{html.escape(name)}</td>',
                     f'<td class=backbone data-value="{html.escape(row["Backbone"])}">{html.escape(row["Backbone"])}</td>']
            for column in [*main, None, "Seeds"]:
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
        parts.append(f"<h3>{html.escape(dataset)}: other metrics and times</h3>" + _table_head(["Method", *other]))
        for name, row in zip(shown_names, rows):
            cells = [f'<td class=name data-value="{html.escape(name)}">{html.escape(name)}</td>']
            for column in other:
                value, shown = _cell(row, column)
                cells.append(f'<td data-value="{value}">{shown}</td>')
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    if not tables:
        parts.append("<p>no run records found</p>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts), configs


def _table_head(head: list[str]) -> str:
    return "<table class=board><thead><tr>" + "".join(
        f'<th data-column="{html.escape(h)}"{" class=name" if h in ("Method", "Backbone", "Config") else ""}>'
        f'{html.escape(h)}</th>' for h in head) + "</tr></thead><tbody>"


def write_site(records: Iterable[RunRecord | dict[str, Any]], folder: str | Path, *, title: str | None = None,
               source: str = "") -> Path:
    """``folder/index.html`` and ``folder/configs/<run id>.json``; returns the page's path. A
    folder holding the page of another ``source`` is refused, never written over."""
    from collm_bench.data.format import atomic_path

    folder = Path(folder)
    existing = _source_of(folder / "index.html")
    if existing is not None and existing != source:
        raise UserError(f"{folder / 'index.html'} is the page of {existing or 'another board'}, not of "
                        f"{source or 'these records'}: give each board its own --output folder")
    page, configs = render_html(records, title=title, source=source)
    for run_id, config in configs.items():
        with atomic_path(folder / "configs" / f"{run_id}.json") as tmp:
            Path(tmp).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    with atomic_path(folder / "index.html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return folder / "index.html"


def _source_of(page: Path) -> str | None:
    """The ``source`` stamped in an existing page (None: no page there)."""
    try:
        text = page.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError:
        return None
    found = re.search(r'<meta name="collm-bench-source" content="([^"]*)">', text)
    return html.unescape(found.group(1)) if found else ""


def write_index(folder: str | Path, pages: list[tuple[str, str]], *, title: str = "collm-bench leaderboards") -> Path:
    """``folder/index.html`` linking each ``(relative href, title)`` page: the site of every board."""
    from collm_bench.data.format import atomic_path

    folder = Path(folder)
    items = "".join(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>' for href, name in pages)
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f'<meta name="collm-bench-source" content="site index">'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>")
    with atomic_path(folder / "index.html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return folder / "index.html"
