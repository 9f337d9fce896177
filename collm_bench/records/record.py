"""The run record (``record.json``) as every reader sees it: checked once when parsed, then read
through typed properties, so that no reader repeats ``.get(...) or {}`` or its own copy of the
row label, the configuration digest or the "evaluated rows" text. The runner writes the JSON
(``docs/protocol.md``, "Run records"); leaderboards, paper tables, figures, ensembles, suites and
``collm-bench score`` read ``RunRecord``."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from collm_bench._util.paths import NAME_RULE, is_safe_name

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

# What every reader relies on: key -> accepted types.
_SHAPE: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "method": (str,), "seed": (int,), "dataset": (dict,), "evaluation": (dict,),
    "metrics": (dict,), "timings": (dict,),
}


class RecordProblem(ValueError):
    """A record that breaks the shape readers rely on (the message says where)."""


def record_problem(data: Any) -> str | None:
    """What is wrong with a parsed ``record.json``, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for key, types in _SHAPE.items():
        value = data.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            return f"{key!r} is {type(value).__name__ if key in data else 'missing'}, expected {types[0].__name__}"
    if not isinstance(data["dataset"].get("name"), str):
        return "'dataset.name' is missing or not a string"
    if not 0 <= data["seed"] < 2 ** 32:
        return f"'seed' is {data['seed']}, outside [0, 2**32)"
    evaluation = data["evaluation"]
    counts = {key: evaluation.get(key) for key in ("rows", "total_rows") if evaluation.get(key) is not None}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()):
        return f"'evaluation' counts must be non-negative integers, got {counts}"
    if len(counts) == 2 and counts["rows"] > counts["total_rows"]:
        return f"'evaluation.rows' {counts['rows']} is above 'evaluation.total_rows' {counts['total_rows']}"
    if "sampled" in evaluation and not isinstance(evaluation["sampled"], bool):
        return "'evaluation.sampled' is not true or false"
    if not is_safe_name(data["run_id"]):  # it names folders and files (a board's config links)
        return f"'run_id' {data['run_id']!r} cannot name a folder: it must be {NAME_RULE}"
    problem = next(filter(None, (_not_object(data.get(key), key) for key in ("config", "intervals", "training"))), None)
    if problem:
        return problem
    for key in ("label", "encoder", "backbone", "date"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key!r} is {type(data[key]).__name__}, expected a string or null"
    undefined = data.get("undefined")
    if undefined is not None and not (isinstance(undefined, dict) and all(
            isinstance(v, dict) and all(isinstance(w, str) for w in v.values()) for v in undefined.values())):
        return "'undefined' is not an object of subsets mapping metrics to reasons"
    for subset, values in data["metrics"].items():
        if not isinstance(values, dict):
            return f"'metrics.{subset}' is {type(values).__name__}, expected an object"
        for name, value in values.items():
            problem = _out_of_domain(value, UNIT_METRICS.get(name, (0.0, math.inf)), null=True)
            if problem:
                return f"'metrics.{subset}.{name}' {problem}"
            if name in COUNTS and value is not None and (not float(value).is_integer()):
                return f"'metrics.{subset}.{name}' is {value}, not a whole count"
            if value is None and "undefined" in data:   # records before it gave no reasons (their nulls: '-')
                why = (data["undefined"].get(subset) or {}).get(name) if isinstance(data["undefined"], dict) else None
                if not (isinstance(why, str) and why):
                    return f"'metrics.{subset}.{name}' is null without its reason in 'undefined'"
    if not isinstance(data["metrics"].get("overall"), dict):
        return "'metrics.overall' is missing"
    problem = _blocks_problem(data)
    if problem:
        return problem
    for name, bounds in (data.get("intervals") or {}).items():
        if name in UNIT_METRICS and bounds is not None:
            if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2):
                return f"'intervals.{name}' is not a [low, high] pair"
            problem = next(filter(None, (_out_of_domain(b, (0.0, 1.0)) for b in bounds)), None) \
                or ("has low above high" if bounds[0] > bounds[1] else None)
            if problem:
                return f"'intervals.{name}' {problem}"
    for name in ("train_seconds", "inference_seconds", "rows_per_second", "prompts_per_second"):
        problem = _out_of_domain(data["timings"].get(name), (0.0, math.inf), null=True)
        if problem:
            return f"'timings.{name}' {problem}"
    stages = data["timings"].get("stages")
    if stages is not None and not isinstance(stages, dict):
        return f"'timings.stages' is {type(stages).__name__}, expected an object"
    for stage, values in (stages or {}).items():
        if not isinstance(values, dict):
            return f"'timings.stages.{stage}' is {type(values).__name__}, expected an object"
        problem = _out_of_domain(values.get("seconds"), (0.0, math.inf), null=True)
        if problem:
            return f"'timings.stages.{stage}.seconds' {problem}"
    return None


def _blocks_problem(data: dict) -> str | None:
    """The blocks renderers and the stale check read beyond the metrics: their shapes."""
    training = data.get("training") or {}
    problem = (_not_object((data.get("config") or {}).get("options"), "config.options")
               or _not_object(training.get("backbone"), "training.backbone"))
    if problem:
        return problem
    members = training.get("members")
    if members is not None and not (isinstance(members, list) and all(isinstance(m, dict) for m in members)):
        return "'training.members' is not a list of objects"
    intervals = data.get("intervals") or {}
    for key, domain in (("level", (0.0, 1.0)), ("resamples", (1.0, math.inf))):
        problem = _out_of_domain(intervals.get(key), domain, null=True)
        if problem:
            return f"'intervals.{key}' {problem}"
    samples = intervals.get("samples")
    problem = _not_object(samples, "intervals.samples")
    if problem:
        return problem
    for name, values in (samples or {}).items():
        if not isinstance(values, list):
            return f"'intervals.samples.{name}' is {type(values).__name__}, expected a list"
        problem = next(filter(None, (_out_of_domain(v, UNIT_METRICS.get(name, (-math.inf, math.inf)), null=True)
                                     for v in values)), None)   # null: a resample where it is undefined
        if problem:
            return f"'intervals.samples.{name}' holds a value that {problem}"
    dependencies = data.get("dependencies")
    problem = _not_object(dependencies, "dependencies")
    if problem:
        return problem
    problem = next(filter(None, (_not_object((dependencies or {}).get(key), f"dependencies.{key}")
                                 for key in ("libraries", "definitions", "modules"))), None)
    if problem:
        return problem
    for key in ("libraries", "definitions", "modules"):   # the stale check hashes and compares them
        values = (dependencies or {}).get(key) or {}
        if not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in values.items()):
            return f"'dependencies.{key}' is not an object of strings"
    return None


def _not_object(value: Any, where: str) -> str | None:
    """Why ``value``, at ``where`` in a record, is not an object (None: it is one, or absent)."""
    if value is None or isinstance(value, dict):
        return None
    return f"'{where}' is {type(value).__name__}, expected an object"


# Metrics that are probabilities of a ranking, or means of them: their domain is [0, 1]. Any
# other number a record holds (log loss, counts, times) is non-negative; all are finite.
UNIT_METRICS = {name: (0.0, 1.0) for name in ("auc", "uauc", "gauc", "ndcg")}
COUNTS = ("rows", "users", "users_scored", "users_skipped")   # beside the metrics of each subset


def _out_of_domain(value: Any, bounds: tuple[float, float], null: bool = False) -> str | None:
    """Why ``value`` cannot be a number of that kind (None: it can)."""
    if value is None:
        return None if null else "is null, expected a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is {type(value).__name__}, expected a number" + (" or null" if null else "")
    if not math.isfinite(value):
        return f"is {value}, not a finite number"
    low, high = bounds
    if not low <= value <= high:
        return f"is {value:.6g}, outside [{low:g}, {high:g}]"
    return None


@dataclass(frozen=True)
class RunRecord:
    """One run's record; ``data`` is the JSON as written (for writers and rare fields)."""

    data: Mapping[str, Any]

    @classmethod
    def parse(cls, data: Any) -> "RunRecord":
        problem = record_problem(data)
        if problem:
            raise RecordProblem(problem)
        return cls(data)

    @classmethod
    def of(cls, record: "RunRecord | Mapping[str, Any]") -> "RunRecord":
        """A ``RunRecord`` as it is, or a record dict parsed (tools and tests build dicts)."""
        return record if isinstance(record, RunRecord) else cls.parse(record)

    # -- identity ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def method(self) -> str:
        return self.data["method"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def dataset(self) -> str:
        """The dataset's name."""
        return self.data["dataset"]["name"]

    @property
    def dataset_sha256(self) -> str | None:
        return self.data["dataset"].get("manifest_sha256")

    @property
    def encoder(self) -> str | None:
        return self.data.get("encoder")

    @property
    def backbone(self) -> str | None:
        return self.data.get("backbone")

    @property
    def label(self) -> str | None:
        return self.data.get("label")

    @property
    def meaningless(self) -> bool:
        """Random-weight backbone (or an ensemble with such a member): numbers mean nothing."""
        return bool(self.data.get("meaningless"))

    @property
    def date(self) -> str:
        return self.data.get("date") or ""

    @property
    def device(self) -> str:
        return str(self.data.get("device") or "?")

    # -- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return dict(self.data.get("config") or {})

    @property
    def options(self) -> dict[str, Any]:
        """The method's options as the run used them (presets resolved)."""
        return dict(self.config.get("options") or {})

    @property
    def training(self) -> dict[str, Any]:
        return dict(self.data.get("training") or {})

    @property
    def evaluation(self) -> dict[str, Any]:
        return dict(self.data["evaluation"])

    # -- results ----------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, dict[str, float | None]]:
        return self.data["metrics"]

    def metric(self, name: str, subset: str = "overall") -> float | None:
        value = (self.data["metrics"].get(subset) or {}).get(name)
        return None if value is None else float(value)

    def undefined(self, name: str, subset: str = "overall") -> str | None:
        """Why metric ``name`` is undefined on this run's ``subset`` rows (it is then null), or None."""
        return ((self.data.get("undefined") or {}).get(subset) or {}).get(name)

    def timing(self, name: str) -> Any:
        return self.data["timings"].get(name)

    @property
    def stage_keys(self) -> dict[str, str]:
        return {name: s["key"] for name, s in (self.data["timings"].get("stages") or {}).items()
                if isinstance(s, dict) and s.get("key")}

    @property
    def predictions_sha256(self) -> str | None:
        """The checksum of the ``predictions.csv`` it was made from (None: an older record)."""
        return self.data.get("predictions_sha256")

    @property
    def intervals(self) -> dict[str, Any]:
        return dict(self.data.get("intervals") or {})

    @property
    def dependencies(self) -> dict[str, Any] | None:
        """The code that made it: its definitions' digests, library versions and the components
        its identity starts from (None: not recorded)."""
        value = self.data.get("dependencies")
        return value if isinstance(value, dict) else None

    def stale_reasons(self, registry=None) -> list[str]:
        """What changed in its code since it was made (empty: nothing; ``collm_bench.cache.identity``):
        the definitions its components reach now against those it recorded."""
        from collm_bench.cache.identity import SCHEME, stale_reasons

        recorded = self.dependencies or {}
        components = recorded.get("components")
        if recorded.get("scheme") != SCHEME or not isinstance(components, list) or not all(
                isinstance(c, list) and len(c) == 2 and all(isinstance(x, str) for x in c) for c in components):
            return ["its code is not recorded in the current scheme (records kept module fingerprints before)"]
        from collm_bench.api.registry import get_registry
        from collm_bench.records.store import record_roots

        registry = registry or get_registry()
        absent = [f"{kind} {name!r}" for kind, name in components if name not in registry.components.get(kind, {})]
        if absent:
            return [f"{', '.join(absent)} not registered here, so its code cannot be compared (install its plugin)"]
        return stale_reasons(recorded, *record_roots(registry, [tuple(c) for c in components]))

    # -- how boards show it -----------------------------------------------------------------
    @property
    def row_label(self) -> str:
        """Its label (set by methods whose name alone does not say the row, such as ensembles),
        else ``method`` or ``method-encoder``."""
        if self.label:
            return self.label
        return self.method if not self.encoder or self.encoder == self.method else f"{self.method}-{self.encoder}"

    @property
    def config_digest(self) -> str:
        """A short digest of the configuration without its seed: runs that differ only by seed
        are one row."""
        config = {k: v for k, v in self.config.items() if k != "seed"}
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:6]

    @property
    def evaluated_rows(self) -> str:
        return evaluated_rows(self.data["evaluation"])


def evaluated_rows(evaluation: Mapping[str, Any] | None) -> str:
    """Which test rows a run scored, as boards state it (a sample is never mistaken for all)."""
    ev = evaluation or {}
    if ev.get("sampled"):
        sample = ev.get("sample") or {}
        if sample.get("unit") == "rows":
            how = f", drawn within {sample.get('users')} of {sample.get('of_users')} users"
            if sample.get("warm_users") is not None:
                how += f", {sample['warm_users']} of them with warm rows and {sample.get('cold_users')} with cold"
        elif sample.get("users") is not None:   # records of the whole-user sample, before 2026-12-07
            how = f", {sample.get('users')} whole users of {sample.get('of_users')}"
        else:
            how = ""
        return f"a sample of {ev.get('rows')} of {ev.get('total_rows')} test rows{how} (not the whole test split)"
    return f"all {ev.get('rows')} test rows"


def unique_runs(records: Iterable["RunRecord | Mapping[str, Any]"]) -> list[RunRecord]:
    """Each run once, however many folders hold a copy of its record (the newest copy kept)."""
    kept: dict[str, RunRecord] = {}
    for record in map(RunRecord.of, records):
        if record.run_id not in kept or record.date > kept[record.run_id].date:
            kept[record.run_id] = record
    return list(kept.values())
