"""The tuning loop of the LLM methods (``docs/protocol.md``, "CIE and the two steps").

AdamW (no weight decay on biases and other 1-D weights), linear warmup then cosine decay,
evaluation every ``eval_every`` steps on a validation AUC, the best trainable state kept,
early stopping after ``patience`` evaluations without gain, and a hard ``max_steps`` budget.
Under ``torchrun`` the loop is data parallel (``collm_bench._util.distributed``).
The loop knows nothing of prompts or models: the method passes closures.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from collm_bench._util import distributed
from collm_bench.cache._checkpoint_checks import check_checkpoint_state
from collm_bench.cache.checkpoints import Checkpointer
from collm_bench.progress import bar, detail


@dataclass
class TuneResult:
    best_step: int
    best_valid_auc: float
    steps_run: int
    curve: list[tuple[int, float]] = field(default_factory=list)
    train_seconds: float = 0.0           # optimisation only, evaluations excluded
    eval_seconds: float = 0.0
    samples_per_second: float = 0.0
    stopped: str = "max_steps"


def adamw(named_parameters, *, lr: float, weight_decay: float, lr_by_prefix: dict[str, float] | None = None):
    """AdamW with decay on matrices only (biases, norms and other 1-D weights get none);
    ``lr_by_prefix`` gives parameters whose name starts with a prefix their own learning rate."""
    import torch

    groups: dict[tuple[float, float], list] = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        rate = next((r for prefix, r in (lr_by_prefix or {}).items() if name.startswith(prefix)), lr)
        decay = 0.0 if param.ndim < 2 or name.endswith(".bias") else weight_decay
        groups.setdefault((decay, rate), []).append(param)
    return torch.optim.AdamW([{"params": params, "weight_decay": decay, "lr": rate}
                              for (decay, rate), params in groups.items()], lr=lr)


def warmup_cosine(optimizer, *, warmup_steps: int, total_steps: int):
    """Linear warmup from 0 to the base rate, then cosine decay to 0 at ``total_steps``."""
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def tune(
    *,
    named_parameters: list,
    batches: Iterator[np.ndarray],
    loss_of: Callable[[np.ndarray, int], Any],
    evaluate: Callable[[], float],
    snapshot: Callable[[], dict[str, Any]],
    restore: Callable[[dict[str, Any]], None],
    lr: float,
    weight_decay: float,
    max_steps: int,
    warmup_steps: int,
    eval_every: int,
    patience: int,
    progress: Callable[[str], None] | None = None,
    lr_by_prefix: dict[str, float] | None = None,
) -> TuneResult:
    """Optimise ``loss_of(rows, step)`` over ``batches`` (arrays of row indices; ``step`` counts
    from 1, so that a schedule of its own, e.g. a curriculum, resumes where it was).

    ``evaluate()`` returns the validation AUC; ``snapshot()`` / ``restore(state)`` copy the
    trainable state, so that the loop ends in the best evaluated state (or the initial one
    if no step ever beat it: an evaluation at step 0 is the baseline).

    Inside a cached stage (``collm_bench.cache.stages.checkpoint_dir``) the loop saves its whole state
    every few minutes (weights, optimizer, scheduler, RNG, position in ``batches``, best so far)
    and a rerun of the stage resumes from it, to the same result as an uninterrupted run.
    """
    from collm_bench.cache.stages import checkpoint_dir

    optimizer = adamw(named_parameters, lr=lr, weight_decay=weight_decay, lr_by_prefix=lr_by_prefix)
    parameters = [p for _, p in named_parameters]
    distributed.broadcast_from_main(parameters)  # under torchrun: every rank starts from rank 0's state
    scheduler = warmup_cosine(optimizer, warmup_steps=warmup_steps, total_steps=max_steps)
    result = TuneResult(best_step=0, best_valid_auc=-math.inf, steps_run=0)
    folder = checkpoint_dir()
    saver = Checkpointer(folder) if folder is not None else None

    def check(step: int) -> bool:
        started = time.perf_counter()
        value = float(evaluate())
        result.eval_seconds += time.perf_counter() - started
        result.curve.append((step, round(value, 6)))
        improved = value > result.best_valid_auc
        if improved:
            result.best_valid_auc, result.best_step = value, step
            best[0] = snapshot()
        if shown is not None:
            shown.note(valid_auc=value, best=f"{result.best_valid_auc:.4f} @ {result.best_step}")
        detail(f"step {step}: valid AUC {value:.4f} (best {result.best_valid_auc:.4f} @ {result.best_step})")
        return improved

    best: list[dict[str, Any] | None] = [None]
    shown = bar(max_steps, "tuning", unit="step") if progress else None
    with shown if shown is not None else contextlib.nullcontext():
        evals_without_gain, seen = _loop(best, result, saver, shown, optimizer=optimizer, scheduler=scheduler,
                                         parameters=parameters, batches=batches, loss_of=loss_of, check=check,
                                         max_steps=max_steps, eval_every=eval_every, patience=patience,
                                         progress=progress)
    if best[0] is not None:
        restore(best[0])
    result.samples_per_second = seen / result.train_seconds if result.train_seconds else 0.0
    return result


def _loop(best: list, result: TuneResult, saver: Checkpointer | None, shown: bar | None, *, optimizer, scheduler,
          parameters, batches, loss_of, check, max_steps, eval_every, patience, progress) -> tuple[int, int]:
    """The steps of ``tune`` (from a checkpoint when there is one); returns (evals without gain, rows seen)."""
    evals_without_gain, seen, start = 0, 0, 1
    resumed = saver.load() if saver is not None else None
    if resumed is not None:
        tensors, state = resumed
        check_checkpoint_state(saver.folder, state, max_steps, tensors)
        evals_without_gain, seen, start = _restore(tensors, state, parameters, optimizer, scheduler, result, best)
        for _ in range(start - 1):  # the same batches from here on: replay the order drawn so far
            next(batches)
        if progress:
            progress(f"resuming at step {start - 1} from {saver.folder}")
    else:
        check(0)
    for step in range(start, max_steps + 1):
        rows = next(batches)  # the global batch; under torchrun each rank takes its share
        mine, weight = distributed.local_part(rows)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = None  # an empty share (a batch smaller than the world) adds no loss here
        if len(mine):
            loss = loss_of(mine, step)
            (loss * weight).backward()
        distributed.average_gradients(parameters)
        optimizer.step()
        scheduler.step()
        result.train_seconds += time.perf_counter() - started
        seen += len(rows)
        result.steps_run = step
        if shown is not None:
            shown.update(step - shown.done)
            if loss is not None:
                shown.note(loss=round(loss.item(), 4))
        if loss is not None and step % max(1, eval_every // 5) == 0:
            detail(f"step {step}/{max_steps}: loss {loss.item():.4f}")
        if step % eval_every == 0 or step == max_steps:
            evals_without_gain = 0 if check(step) else evals_without_gain + 1
            if evals_without_gain >= patience:
                result.stopped = "patience"
                break
        if saver is not None and step < max_steps and saver.due():
            saver.save(*_state(step, parameters, optimizer, scheduler, result, best[0], evals_without_gain, seen))
    return evals_without_gain, seen


def _state(step: int, parameters: list, optimizer, scheduler, result: TuneResult, best: dict[str, Any] | None,
           evals_without_gain: int, seen: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The loop's whole state after ``step``: (tensors, JSON-ready rest)."""
    import torch

    tensors = {f"param.{i}": p for i, p in enumerate(parameters)}
    optim = optimizer.state_dict()
    keys = {}
    for index, values in optim["state"].items():
        keys[str(index)] = sorted(values)
        tensors.update({f"opt.{index}.{k}": torch.as_tensor(v) for k, v in values.items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    if best is not None:
        tensors.update({f"best.{name}": value for name, value in best.items()})
    state = {"step": step, "evals_without_gain": evals_without_gain, "seen": seen,
             "optimizer": {"param_groups": optim["param_groups"], "keys": keys},
             "scheduler": scheduler.state_dict(), "best": sorted(best) if best is not None else None,
             "result": {"best_step": result.best_step, "best_valid_auc": result.best_valid_auc,
                        "steps_run": result.steps_run, "curve": result.curve,
                        "train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds}}
    return tensors, state


def _restore(tensors: dict[str, Any], state: dict[str, Any], parameters: list, optimizer, scheduler,
             result: TuneResult, best: list) -> tuple[int, int, int]:
    """Put a saved state back; returns (evals without gain, rows seen, the next step)."""
    import torch

    with torch.no_grad():
        for i, p in enumerate(parameters):
            p.copy_(tensors[f"param.{i}"].to(p.device, p.dtype))
    device = parameters[0].device if parameters else "cpu"
    optimizer.load_state_dict({
        "state": {int(i): {k: tensors[f"opt.{i}.{k}"].to(device) for k in keys}
                  for i, keys in state["optimizer"]["keys"].items()},
        "param_groups": state["optimizer"]["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    if state["best"] is not None:
        best[0] = {name: tensors[f"best.{name}"].to(device) for name in state["best"]}
    saved = state["result"]
    result.best_step, result.best_valid_auc, result.steps_run = saved["best_step"], saved["best_valid_auc"], \
        saved["steps_run"]
    result.curve = [tuple(point) for point in saved["curve"]]
    result.train_seconds, result.eval_seconds = saved["train_seconds"], saved["eval_seconds"]
    return state["evals_without_gain"], state["seen"], state["step"] + 1


def cycle_batches(rows: np.ndarray, batch_size: int, seed: int,
                  order: Callable[[np.ndarray, np.random.Generator], list[np.ndarray]] | None = None
                  ) -> Iterator[np.ndarray]:
    """Endless batches over ``rows``, reshuffled every pass. ``order(rows, rng)`` may group rows
    into batches itself (length bucketing); the default is a plain shuffle."""
    rng = np.random.default_rng(seed)
    while True:
        if order is not None:
            batches = order(rows, rng)
        else:
            shuffled = rng.permutation(rows)
            batches = [shuffled[i:i + batch_size] for i in range(0, len(shuffled), batch_size)]
        yield from batches
