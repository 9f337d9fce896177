"""The ``collm-bench`` command line (typer).

Start-up stays light: torch, transformers and peft are imported only by the commands that
train or score. Errors are one clear line and exit code 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

# Before anything can import torch: without it, OpenMP threads spin-wait and a 2-core machine
# shared with another busy process runs ~30x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402

from collm_bench.errors import UserError  # noqa: E402

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

app = typer.Typer(
    help="collm-bench: benchmark LLM-based recommendation (CoLLM and its baselines).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    # click's plain help: typer's rich panels print flags as if they took a value ("--debug <bool>")
    rich_markup_mode=None,
)
data_app = typer.Typer(help="List, prepare and describe datasets.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")
cache_app = typer.Typer(help="What the stage cache holds, and pruning it.", no_args_is_help=True,
                        rich_markup_mode=None)
app.add_typer(cache_app, name="cache")

_DEBUG = {"on": False}
SLOW_IMPORT_SECONDS = 0.5  # a plugin import above this is reported by `collm-bench plugins`


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress: only results and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Every step's line (loss, validation AUC) "
                                 "instead of progress bars."),
) -> None:
    from collm_bench import progress
    if quiet and verbose:
        raise UserError("--quiet and --verbose exclude each other")
    _DEBUG["on"] = debug
    progress.set_level(progress.QUIET if quiet else progress.VERBOSE if verbose else progress.NORMAL)


def _parse_sets(values: List[str]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key.strip() in out and out[key.strip()] != value.strip():   # the last would win, silently
            raise UserError(f"{key.strip()} is set twice ({out[key.strip()]!r} and {value.strip()!r}): keep one")
        out[key.strip()] = value.strip()
    return out


@app.command()
def run(
    method: str = typer.Option("collm", help="Method (leaderboard row): collm, tallrec, ..., or an encoder "
                               "alone (mf, lightgcn, sasrec, din)."),
    dataset: str = typer.Option("ml-100k", help="Registered dataset name or a prepared-format directory."),
    encoder: Optional[str] = typer.Option(None, help="Collaborative encoder of a CoLLM method (default mf)."),
    backbone: Optional[str] = typer.Option(None, help="LLM backbone of an LLM method (default minilm); "
                                           "hf:<id-or-path> for any Hugging Face model."),
    backbone_path: Optional[str] = typer.Option(None, help="Local weights for the backbone (instead of its hub id)."),
    seed: int = typer.Option(0, help="Random seed."),
    sample_test: Optional[int] = typer.Option(None, help="Score a seeded sample of about this many test rows, "
                                              "drawn within every test user (the same rows for every method)."),
    full_test: bool = typer.Option(False, help="Score the whole test split (overrides a method's CPU sample)."),
    out: Path = typer.Option(Path("runs"), help="Output root; each run goes to OUT/<run-id>/."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset cache (default $COLLM_BENCH_DATA or the user cache)."),
    cache_dir: Optional[str] = typer.Option(None, help="Stage cache (default $COLLM_BENCH_CACHE or the user cache)."),
    set_: List[str] = typer.Option([], "--set", help="Method option KEY=VALUE (repeatable); for an encoder "
                                   "alone, its options."),
    encoder_set: List[str] = typer.Option([], "--encoder-set", help="Encoder option KEY=VALUE (repeatable)."),
    backbone_set: List[str] = typer.Option([], "--backbone-set", help="Backbone option KEY=VALUE (repeatable)."),
    log_to: List[str] = typer.Option([], "--log-to", help="Send each record written to this tracker "
                                     "(repeatable): mlflow, or a plugin's; collm-bench plugins lists them."),
) -> None:
    """Train and evaluate a method; write record.json and predictions.csv; print the leaderboard rows."""
    from collm_bench.api.registry import get_registry
    from collm_bench.reporting.tracking import check_loggers, log_written
    from collm_bench.runner import RunRequest
    from collm_bench.runner import run as run_method

    loggers = check_loggers(get_registry(), log_to)

    if full_test and sample_test is not None:
        raise UserError("--full-test and --sample-test exclude each other")
    backbone_options = _parse_sets(backbone_set)
    if backbone_path is not None:
        backbone_options["path"] = backbone_path
    result = run_method(RunRequest(
        method=method, dataset=dataset, encoder=encoder, backbone=backbone, seed=seed,
        options=_parse_sets(set_), encoder_options=_parse_sets(encoder_set), backbone_options=backbone_options,
        eval_sample=sample_test, full_test=full_test, out=out, data_dir=data_dir, cache_dir=cache_dir,
    ))
    from collm_bench._util import distributed
    distributed.finish()
    if not distributed.is_main():  # under torchrun, rank 0 writes and reports
        return
    from collm_bench.reporting.leaderboard import render_records

    typer.echo(render_records([result.record] + [record for _, record in result.companions], "md"))
    typer.echo(f"runs written under {out}/: " + ", ".join(
        p.name for p in [result.run_dir] + [path for path, _ in result.companions]))
    log_written(loggers, [result.run_dir] + [path for path, _ in result.companions])


@app.command()
def leaderboard(
    runs: Path = typer.Option(Path("runs"), help="Directory searched (recursively) for record.json files."),
    format: str = typer.Option("md", "--format", help="md, csv, json, or html (a static page: --output FOLDER)."),
    output: Optional[Path] = typer.Option(None, help="Write to this file instead of standard output "
                                          "(with --figure: the PNG file, required)."),
    table: Optional[int] = typer.Option(None, "--table", help="The paper's Table N (2..7) in its layout."),
    figure: Optional[int] = typer.Option(None, "--figure", help="The paper's Figure N (3 or 4) as PNG."),
    backbone: Optional[str] = typer.Option(None, help="With --table/--figure: only this backbone's LLM rows "
                                           "(default: one table per backbone found)."),
) -> None:
    """Build leaderboards (one table per dataset, or a paper table / figure) from run records alone."""
    if format not in ("md", "csv", "json", "html"):
        raise UserError(f"--format must be md, csv, json or html, got {format!r}")
    if not runs.is_dir():
        raise UserError(f"{runs}: no such directory")
    if table is not None and figure is not None:
        raise UserError("--table and --figure exclude each other")
    if format == "html":
        from collm_bench.reporting.html import write_site
        from collm_bench.records.store import iter_records

        if output is None or table is not None or figure is not None:
            raise UserError("--format html writes a page for all boards: give --output FOLDER, without --table/--figure")
        typer.echo(str(write_site((r for _, r in iter_records(runs)), output, source=runs.resolve().name)))
        return
    if figure is not None:
        from collm_bench.reporting.paper_figures import write_figure
        from collm_bench.records.store import iter_records

        if output is None:
            raise UserError("--figure needs --output FILE.png")
        typer.echo(str(write_figure(figure, (r for _, r in iter_records(runs)), output, backbone)))
        return
    if table is not None:
        from collm_bench.reporting.paper_tables import render_tables
        from collm_bench.records.store import iter_records

        text = render_tables(table, (r for _, r in iter_records(runs)), format, backbone)
    else:
        from collm_bench.reporting.leaderboard import render

        if backbone is not None:
            raise UserError("--backbone goes with --table or --figure")
        text = render(runs, format)
    _emit(text, output)


def _emit(text: str, output: Optional[Path]) -> None:
    if output:
        from collm_bench._util.paths import ensure_writable
        from collm_bench.data.format import atomic_path

        ensure_writable(output.parent, "folder of --output", "--output")   # one line, not a traceback
        with atomic_path(output) as tmp:
            Path(tmp).write_text(text)
    else:
        typer.echo(text, nl=False)


@app.command()
def suite(
    file: Path = typer.Argument(..., help="A suite file (TOML): docs/suite-format.md; examples in leaderboards/suites/."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would run and what is skipped; run nothing."),
    limit: Optional[int] = typer.Option(None, help="Score only a seeded sample of about N test rows drawn within "
                                        "every user, whatever the file says: quick, PARTIAL numbers (said so)."),
    out: Optional[Path] = typer.Option(None, help="Output root (default: the file's [suite] out)."),
    dataset: List[str] = typer.Option([], "--dataset", help="Replace the datasets axis (repeatable)."),
    backbone: List[str] = typer.Option([], "--backbone", help="Replace the backbones axis (repeatable)."),
    seed: List[int] = typer.Option([], "--seed", help="Replace the seeds axis (repeatable)."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset cache (default $COLLM_BENCH_DATA or the user cache)."),
    cache_dir: Optional[str] = typer.Option(None, help="Stage cache (default $COLLM_BENCH_CACHE or the user cache)."),
    keep_going: bool = typer.Option(False, help="Go on after a failed run (entries using it are blocked)."),
    output: Optional[Path] = typer.Option(None, help="Write the suite's table (markdown) to this file."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Let backbones run model code "
                                           "shipped with their weights (a suite file cannot switch this on)."),
    stale: bool = typer.Option(False, "--stale", help="Also rerun runs whose records exist but whose code "
                               "changed since (a module they depend on, or a library); with --dry-run, list them."),
    entry: List[str] = typer.Option([], "--entry", help="Run only the entry with this name (repeatable), and "
                                    "the members its ensemble needs; the whole file is still checked."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Run up to N runs at once, each in its own process "
                                       "with cores/N threads (one GPU each on a GPU machine); with --cluster, at "
                                       "most N jobs in flight (default: all that can start). docs/suite-format.md."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Submit each run as a job through submitit: "
                                          "slurm, or local (submitit's local executor, this machine); needs "
                                          "pip install 'collm-bench[cluster]'. docs/clusters.md."),
    resource: List[str] = typer.Option([], "--resource", help="KEY=VALUE over the file's [resources] for "
                                       "--cluster (gpus, cpus, mem_gb, time_min, partition, account, qos, "
                                       "constraint; repeatable)."),
    local_fs_ok: bool = typer.Option(False, "--local-fs-ok", help="With --cluster slurm: the cache and output "
                                     "may be on a local filesystem (a one-machine cluster)."),
    log_to: List[str] = typer.Option([], "--log-to", help="Send each record written to this tracker "
                                     "(repeatable): mlflow, or a plugin's; collm-bench plugins lists them."),
) -> None:
    """Run a matrix of runs from a TOML file, skipping those whose records exist and are not
    stale; print its table."""
    import time

    from collm_bench.api.registry import get_registry
    from collm_bench.suites.plan import Overrides, Runner, expand, report, select
    from collm_bench.suites.file import read_suite

    if limit is not None and limit < 1:
        raise UserError("--limit must be a positive number of test rows")
    if jobs is not None and jobs < 1:
        raise UserError("--jobs must be a positive number of processes")
    from collm_bench.suites.cluster import launcher, resources_from_pairs

    resources = resources_from_pairs(resource) if resource else {}
    if (resource or local_fs_ok) and not cluster:
        raise UserError("--resource and --local-fs-ok are for --cluster")
    from collm_bench._util import distributed
    if keep_going and distributed.world_size() > 1:
        raise UserError("--keep-going does not work under torchrun: a run failing on one process would "
                        "leave the others waiting")
    if (cluster or (jobs or 1) > 1) and distributed.world_size() > 1:
        raise UserError("--jobs does not work under torchrun (which already spreads each run over processes): "
                        "drop one of them")
    registry = get_registry()
    from collm_bench.reporting.tracking import check_loggers, log_written

    loggers = check_loggers(registry, log_to)
    spec = read_suite(file)
    # a directory named on the command line is relative to the current one, not to the file
    datasets = tuple(str(Path(d).resolve()) if d not in registry.components["dataset"] and Path(d).exists()
                     else d for d in dataset)
    cells = expand(spec, registry, Overrides(datasets, tuple(backbone), tuple(seed), limit, trust_remote_code))
    cells = select(spec, cells, tuple(entry))
    root = out or spec.out
    if not dry_run:  # before any work: a suite that cannot write its records never starts
        from collm_bench._util.paths import ensure_writable
        from collm_bench.cache.checkpoints import interval_seconds

        ensure_writable(root, "output root", "--out")
        interval_seconds()   # a bad $COLLM_BENCH_CHECKPOINT_SECONDS: now, not inside the first stage
        if output:
            ensure_writable(output.parent, "folder of --output", "--output")
    partial = (f"PARTIAL: --limit {limit} scores a sample of about {limit} test rows drawn within every user "
               "instead of the suite's evaluation; these numbers are not the full results") if limit else ""
    if partial:
        typer.echo(partial)
    started = time.perf_counter()
    runner = Runner(spec, registry, out=root, data_dir=data_dir, cache_dir=cache_dir, rerun_stale=stale)
    if cluster and not dry_run:
        from collm_bench.suites.jobs import run_parallel

        outcomes = run_parallel(runner, cells, jobs=jobs or 10_000, keep_going=keep_going,
                                launcher=launcher(cluster, root, data_dir, cache_dir, resources, local_fs_ok))
    elif (jobs or 1) > 1 and not dry_run:
        from collm_bench.suites.jobs import run_parallel

        outcomes = run_parallel(runner, cells, jobs=jobs, keep_going=keep_going)
    else:
        outcomes = runner.run_all(cells, dry_run=dry_run, keep_going=keep_going)
    distributed.finish()
    if not distributed.is_main():  # under torchrun, rank 0 reports
        return
    typer.echo(report(outcomes))
    counts = {s: sum(o.status == s for o in outcomes) for s in dict.fromkeys(o.status for o in outcomes)}
    typer.echo(f"{len(outcomes)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
               + f"; output root {root}; {time.perf_counter() - started:.1f} s")
    if dry_run:
        return
    from collm_bench.records.store import read_record

    records = [read_record(o.run_dir) for o in outcomes if o.run_dir is not None and (o.run_dir / "record.json").exists()]
    if spec.table is not None:
        from collm_bench.reporting.paper_tables import render_tables

        text = render_tables(spec.table, records)
    else:
        from collm_bench.reporting.leaderboard import render_records

        text = render_records(records, "md")
    if partial:
        text = f"**{partial}.**\n\n{text}"
    typer.echo(text)
    if output:
        _emit(text, output)
    if partial:
        typer.echo(partial)
    log_written(loggers, [path for o in outcomes if o.status == "ran" for path in o.written])
    if any(o.status in ("failed", "blocked") for o in outcomes):
        raise typer.Exit(1)


@app.command()
def score(
    run_dir: Path = typer.Argument(..., help="A run directory with predictions.csv."),
    update: bool = typer.Option(False, "--update", help="Add metrics registered since the record was written "
                                "(its predictions verified first); existing values must still match."),
) -> None:
    """Recompute a run's metrics from predictions.csv and compare them with its record (whose
    checksum of the predictions must match first)."""
    from collm_bench.records.rescore import rescore

    code = rescore(run_dir, update, typer.echo)
    if code:
        raise typer.Exit(code)


@app.command("log")
def log_records(
    runs: List[Path] = typer.Argument(..., help="Run folders, or folders searched (recursively) for record.json."),
    to: List[str] = typer.Option(..., "--to", help="Tracker (repeatable): mlflow, or a plugin's."),
) -> None:
    """Send records already written (a board's runs, say) to trackers; each is checked first."""
    from collm_bench.api.registry import get_registry
    from collm_bench.reporting.tracking import check_loggers, log_runs

    registry = get_registry()
    names = check_loggers(registry, to)
    found = [path.parent for run in runs for path in sorted(Path(run).rglob("record.json"))]
    if not found:
        raise UserError(f"no record.json under {', '.join(map(str, runs))}")
    failures = log_runs(registry, found, names, typer.echo)
    if failures:
        raise typer.Exit(1)


@app.command()
def plugins(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    options: Optional[str] = typer.Option(None, "--options", help="List this component's options (types, "
                                          "defaults, allowed values, help) instead."),
) -> None:
    """List every registered component and every plugin that failed to load."""
    from collm_bench.api.registry import get_registry

    registry = get_registry()
    if options is not None:
        _list_options(registry, options, as_json)
        return
    components = [{"kind": r.kind, "name": r.name, "plugin": r.plugin, "version": r.version,
                   "description": r.spec.description} for r in registry.all()]
    failures = [{"plugin": f.plugin, "version": f.version, "error": f.error} for f in registry.failures]
    if as_json:
        typer.echo(json.dumps({"components": components, "failures": failures}, indent=2))
        return
    from tabulate import tabulate

    rows = [(c["kind"], c["name"], c["plugin"], c["version"]) for c in components]
    typer.echo(tabulate(rows, headers=("kind", "name", "plugin", "version"), tablefmt="simple"))
    if failures:
        typer.echo("\nplugins that failed to load:")
        for f in failures:
            typer.echo(f"  {f['plugin']} {f['version']}: {f['error']}")
    for name, (seconds, torch) in sorted(registry.imports.items()):
        if torch or seconds > SLOW_IMPORT_SECONDS:
            typer.echo(f"warning: plugin {name} took {seconds:.2f} s to import"
                       + (" and imported torch" if torch else "")
                       + ": every collm-bench command pays for it; import heavy libraries inside build/load/run",
                       err=True)


def _list_options(registry, name: str, as_json: bool) -> None:
    from tabulate import tabulate

    from collm_bench.api.components import ENCODER_TRAINING_BOUNDS, describe_options

    found = [r for r in registry.all() if r.name == name and r.kind != "dataset"]
    if not found:
        from collm_bench.errors import unknown_name

        raise unknown_name("component", name, {r.name for r in registry.all() if r.kind != "dataset"})
    listing = {f"{r.kind} {r.name}": describe_options(getattr(r.spec, "options", None),
                                                      ENCODER_TRAINING_BOUNDS if r.kind == "encoder" else None)
               for r in found}
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    for title, rows in listing.items():
        typer.echo(f"{title}: " + ("no options" if not rows else "--set KEY=VALUE" if title.startswith("method")
                                   else "--encoder-set KEY=VALUE" if title.startswith("encoder")
                                   else "--backbone-set KEY=VALUE"))
        if rows:
            grouped = any(o["read by"] for o in rows)  # groups: which cached stages an option changes
            typer.echo(tabulate([(o["name"], o["type"], json.dumps(o["default"]), o["allowed"], o["help"])
                                 + ((o["read by"] or "-",) if grouped else ()) for o in rows],
                                headers=("option", "type", "default", "allowed", "help")
                                + (("read by",) if grouped else ()), tablefmt="simple"))


@data_app.command("list")
def data_list(data_dir: Optional[str] = typer.Option(None, help="Dataset cache directory.")) -> None:
    """Registered datasets and whether each is prepared in the cache."""
    from tabulate import tabulate

    from collm_bench.data.datasets import prepared_path
    from collm_bench.api.registry import get_registry

    registry = get_registry()
    rows = []
    for name in registry.names("dataset"):
        path = prepared_path(name, root=data_dir, registry=registry)
        rows.append((name, "yes" if (path / "manifest.json").exists() else "no",
                     registry.get("dataset", name).description))
    typer.echo(tabulate(rows, headers=("name", "prepared", "description"), tablefmt="simple"))


@data_app.command("prepare")
def data_prepare(
    name: str,
    source: Optional[str] = typer.Option(None, help="Local raw data (e.g. the GroupLens zip) instead of a download."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset cache directory."),
    force: bool = typer.Option(False, help="Prepare again even when cached."),
) -> None:
    """Prepare a registered dataset into the cache."""
    from collm_bench.data.datasets import prepare_dataset

    typer.echo(str(prepare_dataset(name, root=data_dir, source=source, force=force)))


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="Registered dataset name or prepared-format directory."),
    data_dir: Optional[str] = typer.Option(None, help="Dataset cache directory."),
) -> None:
    """The paper's Table I columns, positive rate and the warm/cold share of test."""
    from tabulate import tabulate

    from collm_bench.data.summary import summarize
    from collm_bench.data.datasets import resolve_dataset

    summary = summarize(resolve_dataset(name, root=data_dir))
    typer.echo(tabulate([summary], headers="keys", tablefmt="github", disable_numparse=True))


@cache_app.command("list")
def cache_list(cache_dir: Optional[str] = typer.Option(None, help="Stage cache directory.")) -> None:
    """Size of each stage's entries, checkpoints of unfinished stages, leftovers of killed runs."""
    from tabulate import tabulate

    from collm_bench.cache.admin import CHECKPOINT, IN_PROGRESS, human, progress, scan
    from collm_bench.cache.stages import cache_root

    root = cache_root(cache_dir)
    totals: dict[tuple[str, str], list[int]] = {}
    entries = scan(root)
    for entry in entries:
        count_size = totals.setdefault((entry.stage, entry.kind), [0, 0])
        count_size[0] += 1
        count_size[1] += entry.size
    typer.echo(f"{root}")
    typer.echo(tabulate([(stage, kind, n, human(size)) for (stage, kind), (n, size) in sorted(totals.items())],
                        headers=("stage", "kind", "entries", "size"), tablefmt="simple") if totals else "(empty)")
    unfinished = [(entry, done) for entry in entries
                  if entry.kind in (CHECKPOINT, IN_PROGRESS) and (done := progress(entry))]
    if unfinished:
        typer.echo("\nunfinished training (a rerun resumes there):")
        for entry, done in unfinished:
            now = " (a live run is training it)" if entry.kind == IN_PROGRESS else ""
            typer.echo(f"  {entry.stage} {entry.key}{now}: {done}")


@cache_app.command("prune")
def cache_prune(
    keep_for: List[Path] = typer.Option([], "--keep-for", help="Keep only the stages that the records below "
                                        "this folder name (repeatable); without it only leftovers go."),
    checkpoints: bool = typer.Option(False, help="Also delete the checkpoints of unfinished stages."),
    dry_run: bool = typer.Option(False, help="List what would go; delete nothing."),
    cache_dir: Optional[str] = typer.Option(None, help="Stage cache directory."),
) -> None:
    """Delete leftovers of killed runs, and stages your records do not name (--keep-for)."""
    from tabulate import tabulate

    from collm_bench.cache.admin import doomed, human, kept_keys, remove, scan
    from collm_bench.cache.stages import cache_root, live_leases

    keep = kept_keys(keep_for) if keep_for else None
    root = cache_root(cache_dir)
    going = doomed(scan(root), keep, checkpoints, live_leases(root))
    if going:
        typer.echo(tabulate([(e.stage, e.kind, e.key, human(e.size)) for e in going],
                            headers=("stage", "kind", "key", "size"), tablefmt="simple"))
    if not dry_run:
        remove(going)
    freed = human(sum(e.size for e in going))
    typer.echo(f"{'would delete' if dry_run else 'deleted'} {len(going)} entries, {freed}")


def _command_names(commands: list, groups: list) -> list[str]:
    """The names typer's registered ``commands`` and command ``groups`` answer to."""
    from typer.main import get_command_name

    return [c.name or get_command_name(c.callback.__name__) for c in commands] + \
        [g.name or g.typer_instance.info.name for g in groups]


_COMMANDS_ADDED: set[tuple[int, str]] = set()


def _add_plugin_commands() -> None:
    """Each plugin's commands, added only where their names are free: a plugin can add commands
    but never replace or shadow a built-in one, nor another plugin's (it is then reported by
    ``collm-bench plugins`` like a component clash, and adds none)."""
    from collm_bench.api.registry import describe, disable_plugin, get_registry

    registry = get_registry()
    for impl in registry.manager.hook.register_commands.get_hookimpls():
        if (id(registry), impl.plugin_name) in _COMMANDS_ADDED:   # main() called again in one process
            continue
        _COMMANDS_ADDED.add((id(registry), impl.plugin_name))
        before_commands, before_groups = list(app.registered_commands), list(app.registered_groups)
        taken = _command_names(before_commands, before_groups)
        try:
            impl.function(app=app)
            added = _command_names(app.registered_commands[len(before_commands):],
                                   app.registered_groups[len(before_groups):])
            clash = sorted({name for name in added if name in taken or added.count(name) > 1})
            if clash:
                raise UserError(f"command {', '.join(repr(n) for n in clash)} is taken: a plugin can add commands, "
                                "not replace one")
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must never be fatal
            app.registered_commands[:], app.registered_groups[:] = before_commands, before_groups
            disable_plugin(registry, impl.plugin_name, f"failed in register_commands: {describe(exc)}")


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so that unfinished stages clean up as on Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _stopped(argv: Optional[List[str]], signal_name: str, code: int) -> None:
    """One line on SIGINT or SIGTERM: what is kept, and the command that goes on from there."""
    import shlex

    command = shlex.join(["collm-bench", *(sys.argv[1:] if argv is None else argv)])
    print(f"stopped by {signal_name}: finished stages and written records are kept, the unfinished stage is not "
          f"used; to resume: {command}", file=sys.stderr)
    sys.exit(code)


def main(argv: Optional[List[str]] = None) -> None:
    import click
    import signal
    import threading
    import warnings

    # An undefined metric (one label only) is said once, in the run's own line (records.store);
    # numpy's warning from the bootstrap of its NaN resamples would say it again, raw.
    warnings.filterwarnings("ignore", message="All-NaN slice encountered", category=RuntimeWarning)

    if threading.current_thread() is threading.main_thread():   # signal handlers: main thread only
        signal.signal(signal.SIGTERM, _terminate)
    try:
        _add_plugin_commands()   # inside: a signal while plugins load is one line too
        # Without standalone mode click returns (not raises) the code of typer.Exit.
        code = app(args=argv, prog_name="collm-bench", standalone_mode=False)
    except UserError as exc:
        if _DEBUG["on"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _stopped(argv, "Ctrl-C (SIGINT)", 130)
    except Terminated:
        _stopped(argv, "SIGTERM", 143)
    except Exception as exc:  # noqa: BLE001 - one line for the user; --debug shows the traceback
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()   # a usage error: click's, or that of the click typer >= 0.29 vendors (typer._click)
            sys.exit(exc.exit_code)
        if _DEBUG["on"]:
            raise
        from collm_bench.api.registry import describe

        print(f"error: {describe(exc)} (run with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
    if code == 130:   # typer turns Ctrl-C into a returned 130 (no exception reaches here)
        _stopped(argv, "Ctrl-C (SIGINT)", 130)
    if isinstance(code, int) and code:
        sys.exit(code)
