"""Guards on the environment a launcher leaves (``collm_bench.cache.identity``: they only refuse).

``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (torchrun's) are read as integers with
0 <= RANK < WORLD_SIZE; anything else, such as a ``RANK=1`` left over from a cluster job in a
shell without ``WORLD_SIZE``, is refused in one line naming the variable.
"""
from __future__ import annotations

import os

from collm_bench.errors import UserError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"
__guards__ = ("check_launcher_env",)


def check_launcher_env() -> None:
    values = {}
    for name, default in (("WORLD_SIZE", "1"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        text = os.environ.get(name, default).strip() or default
        try:
            values[name] = int(text)
        except ValueError:
            raise UserError(f"${name} is {text!r}, not an integer (set by torchrun; unset it to run one process)") from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise UserError(f"$RANK={values['RANK']} with $WORLD_SIZE={values['WORLD_SIZE']}: a rank must be from 0 to "
                        "WORLD_SIZE - 1 (left over from another launch? unset RANK and WORLD_SIZE to run one process)")
    if values["LOCAL_RANK"] < 0:
        raise UserError(f"$LOCAL_RANK={values['LOCAL_RANK']} is negative")
