"""How the scorer reads its answer (no torch here: option definitions import these names)."""
from __future__ import annotations

READOUTS = ("yes", "yes-no")   # causal backbones: the Yes logit, or Yes minus No
POOLINGS = ("cls", "mean")     # encoder backbones: what the answer head reads
