"""One run, top to bottom as the paper's pipeline:

resolve names and options -> dataset -> prepared split and histories -> evaluation rows
(together: the plan, which fixes the run id before anything is trained) -> method (encoder pretraining, LLM stages, scoring; cached stage by stage) -> predictions ->
metrics -> run record, for the method and for each companion row it produced.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from collm_bench._util import distributed
from collm_bench.api.components import ENCODER_TRAINING_BOUNDS, EncoderSpec, MethodSpec, options_dict, parse_options
from collm_bench.errors import UserError, unknown_name
from collm_bench.llm._checks import check_cuda_index
from collm_bench.cache.checkpoints import interval_seconds as checkpoint_interval
from collm_bench._util.paths import check_name, ensure_writable, inside, write_error
from collm_bench.api.registry import Registry, get_registry
from collm_bench.records.record import evaluated_rows


@dataclass(frozen=True)
class RunRequest:
    method: str = "collm"
    dataset: str = "ml-100k"
    encoder: str | None = None
    backbone: str | None = None
    seed: int = 0
    options: dict[str, str] = dataclasses.field(default_factory=dict)          # the method's
    encoder_options: dict[str, str] = dataclasses.field(default_factory=dict)
    backbone_options: dict[str, str] = dataclasses.field(default_factory=dict)
    eval_sample: int | None = None   # None: the method's default (whole test split unless it says)
    full_test: bool = False          # score every test row, whatever the method's default
    out: Path = Path("runs")
    data_dir: str | None = None
    cache_dir: str | None = None


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: dict[str, Any]
    companions: list[tuple[Path, dict[str, Any]]] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Resolved:
    """A request with every name looked up and every option validated."""

    method: str
    run: Callable[..., Any]
    options: Any
    encoder: str | None
    encoder_options: Any
    backbone: str | None
    backbone_options: Any
    eval_sample: int | None


def _say(message: str) -> None:
    from collm_bench.progress import say

    say(message)


def _silent(message: str) -> None:  # the other ranks under torchrun: rank 0 reports
    pass


def resolve(request: RunRequest, registry: Registry) -> Resolved:
    """Look up the method, encoder and backbone and validate all options; builds nothing."""
    if not 0 <= request.seed < 2**32:
        raise UserError(f"--seed got {request.seed}; allowed: 0 <= seed < 2**32")
    if request.eval_sample is not None and request.eval_sample < 1:
        raise UserError(f"--sample-test got {request.eval_sample}; allowed: a positive number of test rows "
                        "(or --full-test)")
    methods, encoders = registry.components["method"], registry.components["encoder"]
    if request.method in methods:
        spec: MethodSpec = registry.get("method", request.method)
        options = _options(spec.options, request.options, f"method {request.method!r}")
        encoder = _component_choice(request.encoder, spec.encoder, "--encoder", request.method)
        backbone = _component_choice(request.backbone, spec.backbone, "--backbone", request.method)
        run, encoder_overrides = spec.run, request.encoder_options
        default_sample = spec.eval_sample(options) if spec.eval_sample else None
    elif request.method in encoders:
        from collm_bench.encoders.stage import run_encoder_method

        if request.encoder not in (None, request.method):
            raise UserError(f"method {request.method!r} is the encoder itself; drop --encoder {request.encoder}")
        if request.backbone is not None:
            raise UserError(f"method {request.method!r} takes no --backbone")
        options, encoder, backbone, default_sample = None, request.method, None, None
        run, encoder_overrides = run_encoder_method, {**request.encoder_options, **request.options}
    else:
        raise unknown_name("method", request.method, set(methods) | set(encoders))

    encoder_options = None
    if encoder is not None:
        encoder_spec: EncoderSpec = registry.get("encoder", encoder)
        encoder_options = parse_options(encoder_spec.options, encoder_overrides, owner=f"encoder {encoder!r}",
                                        bounds=ENCODER_TRAINING_BOUNDS)
    elif request.encoder_options:
        raise UserError(f"method {request.method!r} takes no encoder options")
    backbone_options = None
    if backbone is not None:
        backbone, overrides = _split_hf(backbone, request.backbone_options)
        backbone_spec = registry.get("backbone", backbone)
        backbone_options = _options(backbone_spec.options, overrides, f"backbone {backbone!r}")
    elif request.backbone_options:
        raise UserError(f"method {request.method!r} takes no backbone options")
    if request.full_test:
        eval_sample = None
    else:
        eval_sample = request.eval_sample if request.eval_sample is not None else default_sample
    return Resolved(request.method, run, options, encoder, encoder_options, backbone, backbone_options,
                    eval_sample)


def check_devices(resolved: Resolved) -> None:
    """Refuse, before any work, what only this machine can refuse (rather than after step 1 has
    trained): a CUDA device or bitsandbytes quantization where torch sees no GPU, int8 CPU
    scoring on a GPU. Imports torch, which the run needs anyway."""
    backbone = resolved.backbone_options
    if backbone is None:
        return
    import torch

    device = str(getattr(backbone, "device", "auto"))
    quantization = str(getattr(backbone, "quantization", "none"))
    cuda = torch.cuda.is_available()
    on_cuda = device.startswith("cuda") or (device == "auto" and cuda)
    if device.startswith("cuda") and not cuda:
        raise UserError(f"backbone option device={device}: torch sees no CUDA device here; use device=auto or cpu")
    check_cuda_index(device, torch.cuda)
    if quantization != "none" and not on_cuda:
        raise UserError(f"backbone option quantization={quantization}: bitsandbytes needs a CUDA device, and "
                        "this run is on the CPU; drop it (or use --set int8_inference=true for CPU scoring)")
    if getattr(resolved.options, "int8_inference", None) and on_cuda:
        raise UserError("option int8_inference=true: int8 dynamic quantization is for CPU scoring, and this run "
                        "is on CUDA; drop it (or use --backbone-set quantization=8bit)")


def _dataset_defaults(resolved: Resolved, request: RunRequest, dataset) -> Resolved:
    """Sequence encoders read the dataset's own history length (25 on ML, 20 on Amazon) unless
    the user set ``history_len``."""
    options = resolved.encoder_options
    user_set = {**request.encoder_options, **(request.options if resolved.encoder == resolved.method else {})}
    if (options is None or dataset.sequence_len is None or "history_len" in user_set
            or not getattr(options, "history_len", 0)):
        return resolved
    return dataclasses.replace(resolved, encoder_options=dataclasses.replace(options, history_len=dataset.sequence_len))


def _options(options_cls: type | None, overrides: dict[str, str], owner: str) -> Any:
    if options_cls is None:
        if overrides:
            raise UserError(f"{owner} takes no options (got {', '.join(overrides)})")
        return None
    return parse_options(options_cls, overrides, owner=owner)


def _component_choice(given: str | None, default: str | None, flag: str, method: str) -> str | None:
    if default is None:
        if given is not None:
            raise UserError(f"method {method!r} takes no {flag}")
        return None
    return given or default


def _backbone_label(backbone: str | None, resolved: Resolved) -> str | None:
    """How records name a backbone: ``hf`` with its path is ``hf:<path>``, whether the method
    reports it so or not, so that a plan foresees the run id of an ``hf:`` run."""
    path = getattr(resolved.backbone_options, "path", None)
    return f"hf:{path}" if backbone == "hf" and path else backbone


def _split_hf(backbone: str, overrides: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``hf:<id-or-path>`` is the ``hf`` backbone with ``path`` set."""
    if backbone.startswith("hf:"):
        return "hf", {**overrides, "path": backbone[3:]}
    return backbone, overrides


class DatasetSource:
    """One prepared dataset of a process, read at most once: its manifest at once, its data when
    a run (or a plan without a kept evaluation) needs it. A suite's plans share it."""

    def __init__(self, path: Path) -> None:
        from collm_bench.data.format import read_head

        self.head = read_head(path)   # the manifest checked and its files against their digests

    @functools.cached_property
    def dataset(self) -> Any:
        from collm_bench.data.format import load_prepared

        return load_prepared(self.head.path)

    @functools.cached_property
    def data(self) -> Any:
        from collm_bench.data.interactions import build_interactions

        return build_interactions(self.dataset)


@dataclass(frozen=True)
class Plan:
    """A request resolved down to its dataset, evaluation rows and the configuration (hence the
    run id) of its main row: all known before any model is trained, so that a suite can tell
    which runs already exist. The data is read when a run needs it (``dataset``, ``data``,
    ``eval_rows``); a plan alone reads the dataset's manifest and a kept evaluation
    (``collm_bench.cache._evaluation_memo``)."""

    request: RunRequest
    resolved: Resolved
    source: DatasetSource
    evaluation: dict[str, Any]
    config: dict[str, Any]
    run_id: str
    memo: Path                 # where this evaluation is kept between processes
    drawn: Any = dataclasses.field(default=None, repr=False)   # the rows, when the plan drew them
    # run id -> method of each row the method declares it writes too
    companions: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return Path(self.request.out) / self.run_id

    @property
    def dataset(self) -> Any:     # collm_bench.data.format.PreparedDataset
        return self.source.dataset

    @property
    def data(self) -> Any:        # collm_bench.data.interactions.Interactions
        return self.source.data

    @functools.cached_property
    def eval_rows(self) -> Any:   # np.ndarray of row indices into ``data``
        """The evaluation rows, drawn from the data; refused if they are not the planned ones."""
        from collm_bench.api.methods import evaluation_rows
        from collm_bench.cache import _evaluation_memo

        if self.drawn is not None:
            return self.drawn
        rows, evaluation = evaluation_rows(self.data, self.resolved.eval_sample)
        if evaluation != self.evaluation:
            _evaluation_memo.forget(self.memo)
            raise RuntimeError(f"the evaluation rows drawn from {self.source.head.path} are not the planned ones "
                               f"(kept in {self.memo}, now removed): plan the run again")
        return rows


def config_key(config: dict[str, Any]) -> str:
    """The digest of a row's configuration that names its run directory."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def run_id_of(config: dict[str, Any]) -> str:
    """``<dataset>__<method>__seed<N>__<config digest>``: the name of the run's folder."""
    run_id = f"{config['dataset']}__{config['method']}__seed{config['seed']}__{config_key(config)}"
    return check_name("run id", run_id)


def row_config(base: dict[str, Any], method: str, options: dict[str, Any] | None, encoder: str | None,
               backbone: str | None, resolved: Resolved) -> dict[str, Any]:
    """What defines a row. A companion's config is the one its own run would have, so that it
    and a direct run of that method share a run id."""
    return {**base, "method": method, "options": options, "encoder": encoder,
            "encoder_options": options_dict(resolved.encoder_options) if encoder else None,
            "backbone": _backbone_label(backbone, resolved),
            "backbone_options": options_dict(resolved.backbone_options) if backbone else None}


def _recorded_options(resolved: Resolved, registry: Registry) -> Any:
    """The method's options as its record will state them (presets applied where the method
    says how), without running it."""
    if resolved.options is None:
        return None
    spec = registry.components["method"].get(resolved.method)
    finish = getattr(spec.spec, "resolve_options", None) if spec else None
    return finish(resolved.options) if finish else resolved.options


def _companion_ids(resolved: Resolved, registry: Registry, base: dict[str, Any], options: Any) -> dict[str, str]:
    """The rows the method declares it writes beside its own (``MethodSpec.companions``): the run
    id a direct run of each would have, and its method."""
    spec = registry.components["method"].get(resolved.method)
    declare = getattr(spec.spec, "companions", None) if spec else None
    if declare is None:
        return {}
    return {run_id_of(row_config(base, c.method, c.options, c.encoder, c.backbone, resolved)): c.method
            for c in declare(options, resolved.encoder, resolved.backbone)}


def plan(request: RunRequest, *, registry: Registry | None = None,
         loaded: dict[tuple[str, str | None], DatasetSource] | None = None) -> Plan:
    """Resolve names and options, find the dataset and its evaluation rows; trains nothing.

    The evaluation (how many rows, which sample) comes from the stage cache when an earlier
    process drew it from the same dataset with the same code, otherwise from the data, read once.
    ``loaded`` keeps each dataset's source by (dataset name, data dir) across plans, so that a
    suite reads each dataset once.
    """
    from collm_bench.api.methods import evaluation_rows
    from collm_bench.cache import _evaluation_memo
    from collm_bench.cache.stages import cache_root
    from collm_bench.data.datasets import dataset_path

    registry = registry or get_registry()
    resolved = resolve(request, registry)   # every name and option checked before any work
    source_key = (str(request.dataset), request.data_dir)
    source = loaded.get(source_key) if loaded is not None else None
    if source is None:
        with distributed.main_first():  # under torchrun, one download into the shared cache
            source = DatasetSource(dataset_path(request.dataset, root=request.data_dir, registry=registry))
        if loaded is not None:
            loaded[source_key] = source
    resolved = _dataset_defaults(resolved, request, source.head)
    memo = _evaluation_memo.entry_path(cache_root(request.cache_dir), source.head.sha256, resolved.eval_sample)
    rows, evaluation = None, _evaluation_memo.recall(memo)
    if evaluation is None:
        rows, evaluation = evaluation_rows(source.data, resolved.eval_sample)
        _evaluation_memo.keep(memo, evaluation)
    base = _base_config(source.head, request.seed, evaluation)
    options = _recorded_options(resolved, registry)
    config = row_config(base, resolved.method, options_dict(options) if options is not None else None,
                        resolved.encoder, resolved.backbone, resolved)
    return Plan(request, resolved, source, evaluation, config, run_id_of(config), memo, drawn=rows,
                companions=_companion_ids(resolved, registry, base, options))


def _base_config(dataset, seed: int, evaluation: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": dataset.name, "dataset_sha256": dataset.sha256, "seed": seed,
            "evaluation": {k: v for k, v in evaluation.items() if k != "rows"}}


def run(request: RunRequest, *, registry: Registry | None = None,
        progress: Callable[[str], None] = _say, planned: Plan | None = None) -> RunResult:
    """Run a request (or an already made ``plan`` of it) and write its records. Under torchrun
    every process runs the method (data parallel) and rank 0 alone writes and reports."""
    from collm_bench.api.methods import MethodContext
    from collm_bench.cache.stages import StageCache, cache_root

    if not distributed.is_main():
        progress = _silent
    elif planned is None:  # before any work: a run that cannot write its record never starts
        ensure_writable(request.out, "output root", "--out")
        checkpoint_interval()  # a bad $COLLM_BENCH_CHECKPOINT_SECONDS is refused now, not inside a stage
    registry = registry or get_registry()
    # refused before the plan keeps anything in the stage cache
    check_devices(planned.resolved if planned else resolve(request, registry))
    p = planned or plan(request, registry=registry)
    request, resolved, evaluation = p.request, p.resolved, p.evaluation
    if evaluation["sampled"]:   # worded by the records' plumbing, as boards word it
        progress(f"evaluating on {evaluated_rows(evaluation)}")
    context = MethodContext(
        dataset=p.dataset, data=p.data, eval_rows=p.eval_rows, seed=request.seed, options=resolved.options,
        encoder=resolved.encoder, encoder_options=resolved.encoder_options, backbone=resolved.backbone,
        backbone_options=resolved.backbone_options, registry=registry,
        stages=StageCache(cache_root(request.cache_dir)), progress=progress, out=Path(request.out),
    )
    output = resolved.run(context)
    base = _base_config(p.source.head, request.seed, evaluation)
    if not distributed.is_main():  # rank 0 writes; the others learn where
        return RunResult(Path(distributed.agree(None)), {}, [])

    def config_of(method: str, out, main: bool) -> dict[str, Any]:
        if main:   # the row planned, named by what it was asked to use (an ensemble's output names its members' backbone)
            options = p.config["options"] if out.options is None else out.options
            return row_config(base, method, options, resolved.encoder, resolved.backbone, resolved)
        return row_config(base, method, out.options, out.encoder, out.backbone, resolved)

    main = _write_run(request.out, resolved.method, config_of(resolved.method, output, True), output,
                      context, evaluation, registry, progress)
    companions = []
    for label, out in output.companions:
        config = config_of(label, out, False)
        kept = _same_row(Path(request.out) / run_id_of(config), out)
        if kept is not None:
            progress(f"kept {kept[0]}: it already records this row, from the same cached stages")
            companions.append(kept)
            continue
        companions.append(_write_run(request.out, label, config, out, context, evaluation, registry, progress,
                                     produced_by=resolved.method))
    written = tuple(path.name for path, _ in companions)
    if sorted(written) != sorted(p.companions):   # suites plan what is declared, and a refresh prunes the rest
        progress(f"warning: method {resolved.method!r} wrote the rows {', '.join(written) or 'none'} beside its own "
                 f"but declares {', '.join(p.companions) or 'none'}: its MethodSpec.companions should say what it writes")
    distributed.agree(str(main[0]))
    return RunResult(main[0], main[1], companions)


def _same_row(run_dir: Path, output) -> tuple[Path, dict[str, Any]] | None:
    """The existing (run dir, record) of a companion row that this run only reproduced from
    cached stages with the same keys, or None. Rewriting it would stamp the record with this
    process's device and date while its timings are those of the run that computed the stages."""
    from collm_bench.records.store import read_record

    stages = {name: s for name, s in output.stages.items() if "key" in s}
    if not stages or not all(s.get("cached") for s in stages.values()):
        return None
    if not ((run_dir / "record.json").exists() and (run_dir / "predictions.csv").exists()):
        return None
    record = read_record(run_dir)
    return (run_dir, dict(record.data)) if record.stage_keys == {name: s["key"] for name, s in stages.items()} else None


def _write_run(out_root: Path, method: str, config: dict[str, Any], output, context, evaluation,
               registry: Registry, progress, produced_by: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the row's predictions, score them and hand the numbers to the record's writer."""
    from collm_bench.records import predictions, store as records
    run_dir = inside(out_root, run_id_of(config))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(run_dir, exc) from exc
    data, rows = context.data, context.eval_rows
    if len(output.scores) != len(rows):
        raise RuntimeError(f"method {method!r} returned {len(output.scores)} scores for {len(rows)} rows")
    predictions.write_predictions(run_dir, data.user_id[rows], data.item_id[rows], data.label[rows],
                                  output.scores, data.subset[rows])
    # Metrics come from the saved predictions, so that record and file always agree; the
    # record carries the file's checksum, so that readers can refuse predictions changed since.
    frame = predictions.read_predictions(run_dir)
    scored = records.Scored(metrics=predictions.metrics_of(frame), intervals=predictions.intervals_of(frame),
                            predictions_sha256=predictions.predictions_sha256(run_dir), rows=len(rows))
    record = records.write_run(run_dir, method, config, config_key(config), output, context.dataset, evaluation,
                               scored, registry, produced_by)
    progress(f"wrote {run_dir}")
    return run_dir, record
