"""``collm-bench suite FILE.toml``: a matrix of runs, checked whole before anything runs, run in
an order where every ensemble's members come first, skipping runs whose records exist.

A run is skipped when ``<out>/<run-id>/`` holds its record (and its predictions, when an
ensemble of the suite reads them), the run id being the runner's digest of the resolved
configuration (``collm_bench.runner.plan``), so a suite reruns exactly what changed: another
option, seed, dataset version or evaluation sample.
An entry with ``members`` (an ensemble) gets its members' run ids as its ``runs`` option and
is evaluated on their rows; it is rerun when a member's predictions are not those it averaged.
A record whose code changed since it was made (``collm_bench.cache.identity``: a module it depends
on, or a numerical library) is stale: a suite names it when it skips it, and reruns it with
``--stale``. ``--entry NAME`` runs some entries only (with the members their ensembles need).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from collm_bench._util import distributed
from collm_bench.errors import UserError, unknown_name
from collm_bench.progress import say
from collm_bench.suites.file import Entry, SuiteFile

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


@dataclass
class Cell:
    """One run of the matrix."""

    entry: Entry
    method: str
    dataset: str
    seed: int
    encoder: str | None
    backbone: str | None              # the run's backbone (None: the method takes none)
    scope: str | None                 # the backbone axis value (what an ensemble's members share)
    strategy: str | None
    options: dict[str, str]
    encoder_options: dict[str, str]
    backbone_options: dict[str, str]
    eval_sample: int | None
    full_test: bool
    members: list["Cell"] = field(default_factory=list)
    missing: str | None = None        # why it cannot run here (its optional plugin is not installed)
    resources: dict[str, Any] = field(default_factory=dict)   # what it asks of a cluster (--cluster)

    @property
    def label(self) -> str:
        """How members name it: the leaderboard's row label, with a strategy other than default."""
        base = self.method if not self.encoder or self.encoder == self.method else f"{self.method}-{self.encoder}"
        if self.entry.members:
            base += f"({'+'.join(self.entry.members)})"
        return base + (f"/{self.strategy}" if self.strategy not in (None, "default") else "")

    def describe(self) -> str:
        on = f" on {self.backbone or self.scope}" if (self.backbone or self.scope) else ""
        return f"{Path(self.dataset).name} {self.label}{on} seed {self.seed}"


@dataclass
class Outcome:
    cell: Cell
    status: str                       # ran | skipped | would run | would skip | failed | blocked
    run_dir: Path | None = None
    note: str = ""
    evaluation: dict[str, Any] | None = None   # the rows it is (or would be) evaluated on
    written: list[Path] = field(default_factory=list)   # the records its run wrote (companions too)
    companions: dict[str, str] = field(default_factory=dict)  # run id -> method of the rows its method writes too


@dataclass(frozen=True)
class Overrides:
    """Command-line replacements of the file's axes and evaluation."""

    datasets: tuple[str, ...] = ()
    backbones: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    limit: int | None = None          # score a sample of about limit test rows: partial numbers
    trust_remote_code: bool = False   # --trust-remote-code: never from the file


def expand(suite: SuiteFile, registry, overrides: Overrides = Overrides()) -> list[Cell]:
    """Every cell of the matrix, each validated (names, options) as ``collm-bench run`` would."""
    from collm_bench.runner import RunRequest, resolve

    size = matrix_size(suite, overrides)
    if size > MAX_CELLS:
        raise UserError(f"{suite.path}: its matrix has {size:,} runs, over the limit of {MAX_CELLS:,}: split it into "
                        "several suite files (or narrow an axis)")
    cells: list[Cell] = []
    for entry in suite.entries:
        for method in entry.methods:
            missing = _missing_plugin(entry, method, registry)
            if missing:
                cells += _unavailable_cells(suite, entry, method, registry, overrides, missing)
            else:
                cells += _expand_entry(suite, entry, method, registry, overrides)
    for cell in cells:
        if cell.missing:
            continue
        request = RunRequest(method=cell.method, dataset=cell.dataset, encoder=cell.encoder, backbone=cell.backbone,
                             seed=cell.seed, options=_with_placeholder_runs(cell), encoder_options=cell.encoder_options,
                             backbone_options=cell.backbone_options)
        _located(suite, cell.entry, lambda: resolve(request, registry))
    _link_members(suite, cells)
    return order(cells)


# The most runs one suite file may plan. Each run takes seconds (an encoder) to days (an LLM on a
# GPU), and planning holds every cell in memory and checks each one's options: a matrix beyond this
# is a mistake in an axis, refused before anything is expanded. Table II over three seeds is 60.
MAX_CELLS = 10_000


def matrix_size(suite: SuiteFile, overrides: Overrides = Overrides()) -> int:
    """How many runs the file's matrix expands to at most, counted from its axes without
    expanding it: an upper bound (an axis of ``[suite]`` counts for every entry, also one whose
    method does not take it)."""
    total = 0
    for entry in suite.entries:
        count = len(entry.methods)
        for name in ("datasets", "seeds", "encoders", "backbones", "strategies"):
            count *= len(_axis(name, suite, entry, overrides, (None,)))
        total += count
    return total


def _expand_entry(suite: SuiteFile, entry: Entry, method: str, registry, overrides: Overrides) -> list[Cell]:
    where = f"{suite.path}: {entry.where}"
    methods, encoders = registry.components["method"], registry.components["encoder"]
    alone = method not in methods and method in encoders   # an encoder as its own row
    if method in methods:
        spec = methods[method].spec
        has_encoder, has_backbone = spec.encoder is not None, spec.backbone is not None
        fields = {f.name for f in dataclasses.fields(spec.options)} if spec.options else set()
    elif alone:
        spec, has_encoder, has_backbone = None, False, False
        fields = set()
    else:
        raise UserError(f"{where}: {unknown_name('method', method, set(methods) | set(encoders))}")
    if entry.members and "runs" not in fields:
        raise UserError(f"{where}: members need a method with a 'runs' option (ensemble); {method!r} has none")

    def axis(name: str, applies: bool, default: tuple) -> tuple:
        if name in entry.axes and not applies:
            raise UserError(f"{where}: method {method!r} takes no {name}")
        return _axis(name, suite, entry, overrides, default) if applies else (None,)

    encoders_axis = axis("encoders", has_encoder, (spec.encoder if spec else None,))
    scoped = has_backbone or bool(entry.members)
    backbones_axis = axis("backbones", scoped, (spec.backbone if has_backbone else None,))
    strategies_axis = axis("strategies", "strategy" in fields, (None,))
    evaluation = _evaluation(suite, entry, overrides)
    out = []
    for dataset in axis("datasets", True, ()):
        dataset = _dataset(dataset, suite, registry, where)
        for seed in axis("seeds", True, (0,)):
            for encoder in encoders_axis:
                for backbone in backbones_axis:
                    for strategy in strategies_axis:
                        out.append(_cell(suite, entry, method, alone, dataset, seed, encoder,
                                         backbone if has_backbone else None, backbone, strategy, evaluation,
                                         overrides))
    return out


def _missing_plugin(entry: Entry, method: str, registry) -> str | None:
    """Why ``method`` cannot run here, when it comes from the entry's optional ``plugin`` and that
    distribution is not installed. An installed plugin that registers no such name (broken, or a
    typo) is no reason: the name is then refused like any unknown one."""
    from importlib import metadata

    if not entry.plugin or method in registry.components["method"] or method in registry.components["encoder"]:
        return None
    try:
        metadata.distribution(entry.plugin)
    except metadata.PackageNotFoundError:
        return f"needs the plugin {entry.plugin}, not installed"
    return None


def _unavailable_cells(suite: SuiteFile, entry: Entry, method: str, registry, overrides: Overrides,
                       missing: str) -> list[Cell]:
    """The entry's cells as far as they can be known without the method's spec: its datasets,
    seeds, and the encoders and backbones it names (or the suite's), reported as skipped."""
    where = f"{suite.path}: {entry.where}"
    axis = functools.partial(_axis, suite=suite, entry=entry, overrides=overrides)
    evaluation = _evaluation(suite, entry, overrides)
    return [Cell(entry, method, _dataset(dataset, suite, registry, where), seed, encoder, backbone, backbone,
                 None, dict(entry.options), {}, {}, *evaluation, missing=missing)
            for dataset in axis("datasets", default=()) for seed in axis("seeds", default=(0,))
            for encoder in axis("encoders", default=(None,)) for backbone in axis("backbones", default=(None,))]


def _axis(name: str, suite: SuiteFile, entry: Entry, overrides: Overrides, default: tuple) -> tuple:
    """An axis's values: the command line's, else the entry's, else the suite's, else ``default``."""
    cli = {"datasets": overrides.datasets, "backbones": overrides.backbones, "seeds": overrides.seeds}.get(name)
    return cli or entry.axes.get(name) or suite.axes.get(name) or default


def _cell(suite, entry, method, alone, dataset, seed, encoder, backbone, scope, strategy, evaluation,
          overrides: Overrides) -> Cell:
    """One run's names and options: the suite's per-component option tables under the entry's own."""
    given = suite.options
    options = {**given["options"].get(method, {}), **entry.options}
    # an encoder alone takes its [encoder_options.<name>] too, so that its row and CoLLM's
    # pretrained copy of it are one configuration (one run id)
    encoder_name = method if alone else encoder
    encoder_options = {**given["encoder_options"].get(encoder_name, {}), **entry.encoder_options} \
        if encoder_name else {}
    if strategy is not None:
        options["strategy"] = strategy
    backbone_options = {**given["backbone_options"].get(backbone, {}), **entry.backbone_options} if backbone else {}
    if backbone and overrides.trust_remote_code:
        backbone_options["trust_remote_code"] = "true"
    return Cell(entry, method, dataset, seed, encoder, backbone, scope, strategy, options, encoder_options,
                backbone_options, *evaluation, resources={**suite.resources, **entry.resources})


def _evaluation(suite: SuiteFile, entry: Entry, overrides: Overrides) -> tuple[int | None, bool]:
    """(eval_sample, full_test) of an entry's runs; entries with members take their members' later."""
    if overrides.limit is not None:
        return overrides.limit, False
    if entry.full_test is not None or entry.sample_test is not None:
        return entry.sample_test, bool(entry.full_test)
    return suite.sample_test, suite.full_test


def _dataset(name: str, suite: SuiteFile, registry, where: str) -> str:
    """A registered name as is; otherwise a prepared-format directory, relative to the suite file."""
    if name in registry.components["dataset"]:
        return name
    path = Path(name).expanduser()
    path = path if path.is_absolute() else suite.path.parent / path
    if (path / "manifest.json").exists():
        return str(path.resolve())
    raise UserError(f"{where}: {unknown_name('dataset', name, registry.components['dataset'])} "
                    f"(nor a prepared dataset directory at {path})")


def _with_placeholder_runs(cell: Cell) -> dict[str, str]:
    """Options to validate a cell with: members' run ids are known only once they are planned."""
    if not cell.entry.members:
        return cell.options
    return {**cell.options, "runs": ",".join(f"<{m}>" for m in cell.entry.members)}


def _located(suite: SuiteFile, entry: Entry, check: Callable[[], Any]) -> Any:
    try:
        return check()
    except UserError as exc:
        raise UserError(f"{suite.path}: {entry.where}: {exc}") from None


def _link_members(suite: SuiteFile, cells: list[Cell]) -> None:
    """Each member name selects one cell of the same dataset and seed (and backbone, when the
    member has one): an entry's name, else a row label such as ``collm-mf``."""
    for cell in cells:
        for name in cell.entry.members:
            same = [c for c in cells if c is not cell and c.dataset == cell.dataset and c.seed == cell.seed
                    and (c.backbone is None or cell.scope is None or c.backbone == cell.scope)]
            found = [c for c in same if c.entry.name == name] or [c for c in same if c.label == name]
            where = f"{suite.path}: {cell.entry.where}"
            if not found:
                raise UserError(f"{where}: member {name!r} matches no entry or row on {cell.describe()}")
            if len(found) > 1:
                raise UserError(f"{where}: member {name!r} matches {len(found)} runs on {cell.describe()} "
                                f"({', '.join(c.label for c in found)}): name one, e.g. {found[0].label!r}")
            cell.members.append(found[0])


def select(suite: SuiteFile, cells: list[Cell], names: tuple[str, ...]) -> list[Cell]:
    """The cells of the entries named ``names`` (all when none is named) and, transitively, the
    members their ensembles average: an ensemble needs its members' records, and a member runs
    only where its record is missing or stale, as in the whole suite."""
    if not names:
        return cells
    known = [entry.name for entry in suite.entries]
    for name in names:
        if name not in known:
            raise UserError(f"{suite.path}: {unknown_name('entry', name, known)}")
    keep = {id(c) for c in order([c for c in cells if c.entry.name in names])}   # order() brings the members
    return [cell for cell in cells if id(cell) in keep]


def order(cells: list[Cell]) -> list[Cell]:
    """File order, except that members run before the entries that use them (cycles refused)."""
    done: list[Cell] = []
    state: dict[int, str] = {}

    def visit(cell: Cell, path: list[Cell]) -> None:
        if state.get(id(cell)) == "done":
            return
        if state.get(id(cell)) == "active":
            cycle = " -> ".join(c.entry.name for c in path + [cell])
            raise UserError(f"{cell.entry.name!r}: members form a cycle ({cycle})")
        state[id(cell)] = "active"
        for member in cell.members:
            visit(member, path + [cell])
        state[id(cell)] = "done"
        done.append(cell)

    for cell in cells:
        visit(cell, [])
    return done


class Runner:
    """Plans and runs the cells in order; one instance per suite invocation."""

    def __init__(self, suite: SuiteFile, registry, *, out: Path, data_dir: str | None = None,
                 cache_dir: str | None = None, progress: Callable[[str], None] | None = None,
                 rerun_stale: bool = False) -> None:
        self.suite, self.registry, self.out = suite, registry, out
        self.rerun_stale = rerun_stale
        self.data_dir, self.cache_dir = data_dir, cache_dir
        self.progress = progress or say
        self.loaded: dict = {}
        self.outcomes: dict[int, Outcome] = {}
        self.needed: set[int] = set()    # cells whose predictions another cell reads
        self.written_by: dict[str, int] = {}   # run id -> the number of the run that writes it as a companion

    def request(self, cell: Cell):
        from collm_bench.runner import RunRequest

        options, eval_sample, full_test = dict(cell.options), cell.eval_sample, cell.full_test
        if cell.members:
            options["runs"] = ",".join(self.outcomes[id(m)].run_dir.name for m in cell.members)
            eval_sample, full_test = self._members_rows(cell)
        return RunRequest(method=cell.method, dataset=cell.dataset, encoder=cell.encoder, backbone=cell.backbone,
                          seed=cell.seed, options=options, encoder_options=cell.encoder_options,
                          backbone_options=cell.backbone_options, eval_sample=eval_sample,
                          full_test=full_test, out=self.out, data_dir=self.data_dir, cache_dir=self.cache_dir)

    def _members_rows(self, cell: Cell) -> tuple[int | None, bool]:
        seen = set()
        for member in cell.members:
            ev = self.outcomes[id(member)].evaluation
            sample = ev.get("sample") or {}   # min_rows: records of the whole-user sample, before 2026-12-07
            seen.add((sample.get("requested_rows", sample.get("min_rows")), sample.get("rows_sha256"))
                     if ev.get("sampled") else None)
        if len(seen) > 1:
            raise UserError(f"{cell.entry.where}: members are evaluated on different rows "
                            f"({', '.join(str(s[0] if s else 'all') for s in seen)}): set full_test or "
                            "sample_test for the suite")
        sample = seen.pop()
        return (sample[0] if sample else None), sample is None

    def plan(self, cell: Cell):
        from collm_bench.runner import plan

        return plan(self.request(cell), registry=self.registry, loaded=self.loaded)

    def available(self, cell: Cell) -> bool:
        """Whether a cell can be planned without preparing (downloading) its dataset."""
        from collm_bench.data.datasets import prepared_path

        if cell.dataset not in self.registry.components["dataset"]:
            return True
        return (prepared_path(cell.dataset, root=self.data_dir, registry=self.registry) / "manifest.json").exists()

    def step(self, cell: Cell, *, dry_run: bool, prepare: bool = False) -> Outcome:
        """What ``cell`` does (or would do, ``dry_run``); ``prepare``: a dry run may prepare
        datasets to plan on them (a real run would prepare them anyway)."""
        outcome, planned = self.decide(cell, dry_run=dry_run, prepare=prepare)
        if planned is None:
            return outcome
        from collm_bench.runner import run

        self.progress(f"running {cell.describe()} -> {planned.run_dir}")
        result = run(planned.request, registry=self.registry, progress=self.progress, planned=planned)
        return self.ran(outcome, result.run_dir, [path for path, _ in result.companions])

    def ran(self, outcome: Outcome, run_dir: Path, companions: list[Path] = ()) -> Outcome:
        """``outcome`` of a cell whose run wrote ``run_dir`` (and ``companions``)."""
        outcome.status = "ran"
        outcome.written = [Path(run_dir), *map(Path, companions)]
        if run_dir != outcome.run_dir:  # a method recording other options than it planned
            outcome.note = (f"wrote {run_dir.name}, not the planned {outcome.run_dir.name}: method "
                            f"{outcome.cell.method!r} should give its MethodSpec resolve_options; it will rerun")
            outcome.run_dir = run_dir
        return outcome

    def decide(self, cell: Cell, *, dry_run: bool, prepare: bool = False) -> tuple[Outcome, Any]:
        """``(outcome, None)`` for a cell that is skipped, blocked or only listed (``dry_run``), or
        ``(outcome, plan)`` for one to run now (``collm_bench.runner.plan``)."""
        if cell.missing:
            return Outcome(cell, "would skip" if dry_run else "skipped", note=cell.missing), None
        absent = [m for m in cell.members if m.missing]
        if absent:   # skipped like its member, not blocked: nothing went wrong (the suite exits 0)
            return Outcome(cell, "would skip" if dry_run else "skipped",
                           note=f"member {absent[0].entry.name}: {absent[0].missing}"), None
        blocked = [m for m in cell.members if self.outcomes[id(m)].status in ("failed", "blocked", "not run")]
        if blocked:
            return Outcome(cell, "blocked", note=f"member {blocked[0].describe()} did not run"), None
        if dry_run and not prepare and not all(self.available(c) for c in [cell, *cell.members]):
            return Outcome(cell, "would run", note="dataset not prepared yet: run id known once it is"), None
        if dry_run and any(self.outcomes[id(m)].run_dir is None for m in cell.members):
            return Outcome(cell, "would run", note="after its members"), None
        planned = self.plan(cell)
        outcome = Outcome(cell, "", planned.run_dir, evaluation=planned.evaluation,
                          companions=dict(planned.companions))
        fresh = _exists(planned.run_dir, predictions=id(cell) in self.needed) and not self._stale(cell, planned.run_dir)
        if fresh:
            reasons = stale_code(planned.run_dir, self.registry)
            if reasons:
                outcome.note = f"stale: {'; '.join(reasons[:3])}{' ...' if len(reasons) > 3 else ''}" \
                    + ("" if self.rerun_stale else " (rerun with --stale)")
                fresh = not self.rerun_stale
        fresh = distributed.agree(fresh)  # under torchrun, rank 0 (who writes the records) decides
        if dry_run:
            outcome.status = "would skip" if fresh else "would run"
            producer = self.written_by.get(planned.run_id)
            if not fresh and producer is not None:   # a real run finds it written by then, and skips it
                outcome.status, outcome.note = "would skip", f"written by run {producer} (a row its method writes too)"
            return outcome, None
        if fresh:
            outcome.status = "skipped"
            return outcome, None
        return outcome, planned

    def _stale(self, cell: Cell, run_dir: Path) -> bool:
        """An ensemble is stale when a member would run, or when the predictions a member has now
        are not those the ensemble averaged (its record keeps each member's predictions digest):
        a member rerun to the same scores, or rewritten as another run's companion row, leaves it be."""
        from collm_bench.records.store import read_record

        if not cell.members:
            return False
        mine = read_record(run_dir)
        averaged = {m.get("run_id"): m.get("predictions_sha256")
                    for m in mine.training.get("members") or [] if isinstance(m, dict)}
        for member in cell.members:
            outcome = self.outcomes[id(member)]
            if outcome.status == "would run":
                return True
            member_record = read_record(outcome.run_dir)
            now = member_record.data.get("predictions_sha256")
            if not now and (outcome.run_dir / "predictions.csv").exists():
                from collm_bench.records.predictions import predictions_sha256

                now = predictions_sha256(outcome.run_dir)
            if now:
                if averaged.get(outcome.run_dir.name) != now:
                    return True
            elif member_record.date > mine.date:   # a record of before digests: by date
                return True
        return False

    def _needed(self, cells: list[Cell], prepare: bool) -> set[int]:
        """The cells whose predictions must be here: the members of every ensemble that will run.
        An ensemble standing on its members' records as they are needs none (committed boards
        keep records only, so otherwise a fresh checkout would rerun every member). Planned to a
        fixed point: a member rerun for one ensemble may score otherwise, so every ensemble sharing
        it may run too."""
        if not any(c.members for c in cells):
            return set()
        saved, needed = self.outcomes, set()
        try:
            while True:
                self.needed, self.outcomes = needed, {}
                for cell in cells:
                    try:
                        self.outcomes[id(cell)] = self.step(cell, dry_run=True, prepare=prepare)
                    except Exception as exc:  # noqa: BLE001 - the real pass reports it (or goes on, --keep-going)
                        self.outcomes[id(cell)] = Outcome(cell, "failed", note=str(exc))
                grown = {id(m) for c in cells if c.members and self.outcomes[id(c)].status != "would skip"
                         for m in c.members}
                if grown <= needed:
                    return needed
                needed |= grown
        finally:
            self.outcomes = saved

    def run_all(self, cells: list[Cell], *, dry_run: bool = False, keep_going: bool = False) -> list[Outcome]:
        self.needed = self._needed(cells, prepare=not dry_run)
        self.written_by = {}
        results = []
        for number, cell in enumerate(cells, 1):
            try:
                outcome = self.step(cell, dry_run=dry_run)
            except UserError as exc:
                if not keep_going:
                    raise UserError(f"{cell.describe()}: {exc}") from None
                outcome = Outcome(cell, "failed", note=str(exc))
            except Exception as exc:  # noqa: BLE001 - with --keep-going one broken run never stops the rest
                if not keep_going:
                    raise
                from collm_bench.api.registry import describe

                outcome = Outcome(cell, "failed", note=describe(exc))
            self.outcomes[id(cell)] = outcome
            if outcome.status == "would run":
                for run_id in outcome.companions:
                    self.written_by.setdefault(run_id, number)
            if not dry_run:  # a dry run's plan is its table, printed once at the end
                self.progress(f"[{number}/{len(cells)}] {outcome.status}: {cell.describe()}"
                              + (f" ({outcome.note})" if outcome.note else ""))
            results.append(outcome)
        return results


def stale_code(run_dir: Path, registry) -> list[str]:
    """Why the record in ``run_dir`` may no longer be what its code makes (empty: it is)."""
    from collm_bench.records.store import read_record

    return read_record(run_dir).stale_reasons(registry)


def _exists(run_dir: Path, predictions: bool) -> bool:
    """A run exists when its record does; its predictions too when an ensemble reads them (a
    committed leaderboard may keep records without predictions, e.g. under MovieLens' terms)."""
    return (run_dir / "record.json").exists() and (not predictions or (run_dir / "predictions.csv").exists())


def report(outcomes: list[Outcome]) -> str:
    """The suite's outcome, one line per run."""
    from tabulate import tabulate

    rows = []
    for i, o in enumerate(outcomes, 1):
        rows.append((i, o.cell.entry.name, o.cell.describe(), o.status, o.run_dir.name if o.run_dir else "-", o.note))
        for run_id, method in o.companions.items():   # its method's other rows: listed, so that a refresh keeps them
            if o.status in ("would run", "ran"):
                status = f"with {i}"
            else:
                status = "exists" if (o.run_dir.parent / run_id / "record.json").exists() else "absent"
            rows.append(("", "", f"+ {Path(o.cell.dataset).name} {method} seed {o.cell.seed}", status, run_id,
                         f"a row run {i}'s method writes too"))
    return tabulate(rows, headers=("#", "entry", "run", "status", "run id", "note"), tablefmt="simple")
