"""A training loop's state on disk, so that a long stage killed at any point resumes inside
itself: tensors (weights, optimizer moments, best-so-far weights, RNG state) in one safetensors
file, everything else in JSON. No pickle: JSON and safetensors load no code. The JSON is
written last and names the tensors' sha256, so a checkpoint half written, or damaged, is
ignored (and said so), never half used."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from collm_bench._util.strict_json import check_strict_json
from collm_bench.data.format import atomic_path, sha256_file
from collm_bench.errors import UserError

TENSORS, STATE = "checkpoint.safetensors", "checkpoint.json"
FORMAT = "collm-bench-checkpoint/1"
DEFAULT_SECONDS = 300.0


def interval_seconds() -> float:
    """Seconds between checkpoints: ``$COLLM_BENCH_CHECKPOINT_SECONDS`` (0: every step), else 5 min."""
    raw = os.environ.get("COLLM_BENCH_CHECKPOINT_SECONDS")
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise UserError(f"COLLM_BENCH_CHECKPOINT_SECONDS={raw!r}: expected a finite number of seconds >= 0 "
                        "(0: a checkpoint after every step); unset it for every 5 minutes")
    return value


class Checkpointer:
    """Saves at most every ``interval_seconds()`` into ``folder``; ``load()`` gives the last one."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.interval = interval_seconds()
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.interval

    def save(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / TENSORS) as tmp:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp)
        payload = {"format": FORMAT, "tensors_sha256": sha256_file(self.folder / TENSORS), "state": state}
        check_strict_json(payload, STATE)
        with atomic_path(self.folder / STATE) as tmp:
            Path(tmp).write_text(json.dumps(payload))
        self.last = time.monotonic()

    def load(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(tensors, state) of the last complete checkpoint, or None."""
        from safetensors.torch import load_file

        state_path, tensor_path = self.folder / STATE, self.folder / TENSORS
        if not state_path.exists():
            return None
        try:
            payload = json.loads(state_path.read_text())
            if payload.get("format") != FORMAT or sha256_file(tensor_path) != payload.get("tensors_sha256"):
                raise ValueError("its tensors do not match its state")
            return load_file(str(tensor_path)), payload["state"]
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            print(f"warning: {state_path}: checkpoint not usable ({exc}); starting the stage afresh",
                  file=sys.stderr, flush=True)
            return None
