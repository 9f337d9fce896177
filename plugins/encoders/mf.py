"""Matrix factorisation (MF): user and item embeddings scored by their dot product.

Registration only: the torch model lives in ``mf_model`` and is imported by ``build``.
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import EncoderSpec, hookimpl
from collm_bench.api.components import option


@dataclass(frozen=True)
class MFOptions:
    """MF on ML-1M as in the paper (d=256, lr 1e-3, wd 1e-4, batch 1024).

    ``init_std=0.1`` instead of PyTorch's N(0, 1): with N(0, 1) valid AUC sits at ~0.5 for
    100-150 epochs while weight decay shrinks the embeddings.
    """

    dim: int = option(256, ge=1, help="embedding size")
    init_std: float = option(0.1, gt=0, help="std of the normal initialisation")
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 1024
    max_epochs: int = 300
    patience: int = 20
    history_len: int = 0


def build(*, n_users: int, n_items: int, history_len: int = 0, **model_options):
    from collm_bench_plugins.encoders.mf_model import MatrixFactorization

    return MatrixFactorization(n_users, n_items, **model_options)


@hookimpl
def register_encoders(register):
    register(EncoderSpec(
        name="mf", build=build, options=MFOptions,
        description="Matrix factorisation: dot product of user and item embeddings, no biases",
        model_fields=("dim", "init_std"), uses_history=False,
    ))
