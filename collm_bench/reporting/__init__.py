"""Reporting from records alone: leaderboards (Markdown, CSV, JSON, HTML) and the paper's
tables and figures.

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "page_title": "collm_bench.reporting.html",
    "write_index": "collm_bench.reporting.html",
    "ranking_note": "collm_bench.reporting.leaderboard",
    "check_loggers": "collm_bench.reporting.tracking",
    "log_runs": "collm_bench.reporting.tracking",
    "log_written": "collm_bench.reporting.tracking",
    "COLLM": "collm_bench.reporting.paper_tables",
    "Cells": "collm_bench.reporting.paper_tables",
    "FIGURES": "collm_bench.reporting.paper_figures",
    "INTERVAL_NOTE": "collm_bench.reporting.leaderboard",
    "METRICS": "collm_bench.reporting.paper_figures",
    "NO_TIE_TEST": "collm_bench.reporting.leaderboard",
    "REL_IMP": "collm_bench.reporting.paper_tables",
    "Row": "collm_bench.reporting.paper_tables",
    "SCRIPT": "collm_bench.reporting.html",
    "STYLE": "collm_bench.reporting.html",
    "SUBSET_CELLS": "collm_bench.reporting.leaderboard",
    "TABLE2": "collm_bench.reporting.paper_tables",
    "TABLES": "collm_bench.reporting.paper_tables",
    "TAIL": "collm_bench.reporting.leaderboard",
    "Table": "collm_bench.reporting.paper_tables",
    "build_tables": "collm_bench.reporting.paper_tables",
    "collect": "collm_bench.reporting.leaderboard",
    "columns": "collm_bench.reporting.leaderboard",
    "escape_markdown": "collm_bench.reporting.leaderboard",
    "figure_data": "collm_bench.reporting.paper_figures",
    "head_note": "collm_bench.reporting.leaderboard",
    "interval_note": "collm_bench.reporting.leaderboard",
    "metric_values": "collm_bench.reporting.paper_tables",
    "non_default_options": "collm_bench.reporting.leaderboard",
    "paired_auc_difference": "collm_bench.reporting.leaderboard",
    "relative_improvement": "collm_bench.reporting.paper_tables",
    "render": "collm_bench.reporting.leaderboard",
    "render_html": "collm_bench.reporting.html",
    "render_records": "collm_bench.reporting.leaderboard",
    "render_tables": "collm_bench.reporting.paper_tables",
    "seeds_cell": "collm_bench.reporting.leaderboard",
    "row_digests": "collm_bench.reporting.leaderboard",
    "same_draws": "collm_bench.reporting.leaderboard",
    "shown_value": "collm_bench.reporting.leaderboard",
    "table2": "collm_bench.reporting.paper_tables",
    "table3": "collm_bench.reporting.paper_tables",
    "table4": "collm_bench.reporting.paper_tables",
    "table5": "collm_bench.reporting.paper_tables",
    "table6": "collm_bench.reporting.paper_tables",
    "table7": "collm_bench.reporting.paper_tables",
    "timing_values": "collm_bench.reporting.paper_tables",
    "usual_options": "collm_bench.reporting.leaderboard",
    "write_figure": "collm_bench.reporting.paper_figures",
    "write_site": "collm_bench.reporting.html",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
