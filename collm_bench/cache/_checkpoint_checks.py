"""A guard on a training checkpoint's JSON state (``collm_bench.cache.identity``: it only
refuses, so calling it from the tuning loop changes no result's identity).

The state's tensors are checksummed, its JSON is not: a hand-edited or foreign ``checkpoint.json``
(a step count beyond the budget, a negative patience counter, a string where a number belongs)
would replay batches for ever or crash deep inside the optimizer. It is refused in one line
naming the file and the field, with the fix: delete the folder, and the stage starts afresh.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from collm_bench.errors import UserError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"
__guards__ = ("check_checkpoint_state",)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    """A finite int or float (``json.loads`` also gives NaN and the infinities)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < float("inf")


def check_checkpoint_state(folder: Path, state: Any, max_steps: int, tensors: Any) -> None:
    """Refuse a checkpoint ``state`` (``collm_bench.llm.tuning._state``'s) that no run of at most
    ``max_steps`` steps could have written, or that names tensors ``tensors`` (its checksummed
    safetensors) does not hold."""
    where = Path(folder) / "checkpoint.json"

    def refuse(field: str, value: Any, expected: str) -> None:
        raise UserError(f"{where}: {field} is {str(value)[:60]!r}, expected {expected}; this checkpoint was not "
                        f"written by this stage: delete {Path(folder)} and the stage starts afresh")

    if not isinstance(state, dict):
        refuse("the state", type(state).__name__, "an object")
    step = state.get("step")
    if not (_whole(step) and 1 <= step <= max_steps):
        refuse("step", step, f"a step from 1 to the budget of {max_steps}")
    for field in ("seen", "evals_without_gain"):
        if not _whole(state.get(field)):
            refuse(field, state.get(field), "a whole number >= 0")
    best = state.get("best")
    if best is not None and not (isinstance(best, list) and all(isinstance(name, str) for name in best)):
        refuse("best", best, "null or a list of parameter names")
    optimizer = state.get("optimizer")
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("keys"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        refuse("optimizer", optimizer, "an object with 'keys' and 'param_groups'")
    groups = optimizer["param_groups"]
    if not all(isinstance(g, dict) and _number(g.get("lr")) and isinstance(g.get("params"), list) for g in groups):
        refuse("optimizer.param_groups", groups, "objects each with a finite 'lr' and a list of 'params'")
    if not isinstance(state.get("scheduler"), dict):
        refuse("scheduler", state.get("scheduler"), "an object")
    wanted = [f"opt.{i}.{k}" for i, keys in optimizer["keys"].items() if isinstance(keys, list) for k in keys]
    wanted += [f"best.{name}" for name in best or []]
    missing = [name for name in wanted if name not in tensors]
    if missing or not all(isinstance(keys, list) for keys in optimizer["keys"].values()):
        refuse("a tensor it names", (missing or ["optimizer.keys"])[0], "a tensor of checkpoint.safetensors")
    result = state.get("result")
    if not isinstance(result, dict):
        refuse("result", result, "an object")
    if not (_whole(result.get("steps_run")) and result["steps_run"] <= step):
        refuse("result.steps_run", result.get("steps_run"), f"a whole number up to the step, {step}")
    if not (isinstance(result.get("best_step"), int) and -1 <= result["best_step"] <= step):
        refuse("result.best_step", result.get("best_step"), f"a step up to {step}")
    for field in ("best_valid_auc", "train_seconds", "eval_seconds"):
        if not _number(result.get(field)):
            refuse(f"result.{field}", result.get(field), "a finite number")
    curve = result.get("curve")
    if not (isinstance(curve, list) and all(isinstance(p, list) and len(p) == 2 and all(map(_number, p))
                                            for p in curve)):
        refuse("result.curve", curve, "a list of [step, validation AUC] pairs")
