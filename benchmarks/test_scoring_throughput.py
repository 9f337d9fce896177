"""LLM scoring and LoRA training throughput, with the share of the FLOP bound reached.

- Scoring (prompts/s) of ``minilm`` and ``tiny-llama`` on ~100-token text prompts, batch 32,
  length-bucketed, fp32, under ``torch.inference_mode``.
- FLOP bound: model FLOPs per real token (2 x non-embedding parameters + attention,
  4 x layers x d x context for an encoder, half that for a causal model; a causal model's LM
  head once per prompt, as ``logits_to_keep=1``) x real tokens / the fp32 matmul peak measured
  in the same run (a 1024^3 ``torch.matmul``, same threads). Padding is counted as waste.
- ``minilm`` with int8 dynamic quantization (``collm_bench.llm.scorer.quantize_int8``): speed-up
  and agreement with fp32 without labels: correlation and max difference of the scores (of an
  untrained head, so a small spread), and the cosine of the [CLS] hidden states.
- LoRA training (samples/s) of ``minilm``: batch 16, AdamW, BCE, dropout on.

Prompts use a fixed, seeded pool of movie-like titles (5 history titles), so no data is needed.
The machine may be shared: compare the FLOP fractions, which are measured against a peak taken
in the same run, rather than raw rates across machines.
"""
import time

import numpy as np
import pytest

N_PROMPTS = 192
BATCH = 32
HISTORY_TITLES = 5
TRAIN_STEPS = 8
TRAIN_BATCH = 16

_WORDS = ("Star Night Love House River Dark Last Little King Blue Secret Summer Wild Return Heart "
          "City Ghost Moon Dream Road Lost Golden Silent Broken Iron Winter Red Island Shadow Storm").split()


def _titles(n=300, seed=0):
    rng = np.random.default_rng(seed)
    out = [""]
    for _ in range(n):
        words = rng.choice(_WORDS, size=rng.integers(1, 5), replace=False)
        out.append(f"{' '.join(words)} ({rng.integers(1930, 2000)})")
    return out


def _prompts(backbone, n=N_PROMPTS, seed=0):
    from collm_bench.llm.prompts import build_prompts, tokenize_for

    titles = _titles()
    rng = np.random.default_rng(seed)
    history = rng.integers(1, len(titles), size=(n, HISTORY_TITLES))
    target = rng.integers(1, len(titles), size=n)
    return tokenize_for(backbone, build_prompts(titles, history, target, item_noun="movie"))


def _model_flops(backbone, lengths):
    """FLOPs to score prompts of ``lengths`` real tokens (see the module docstring)."""
    import torch

    model, config = backbone.model, backbone.model.config
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    head = model.get_output_embeddings()
    head_params = head.weight.numel() if backbone.kind == "causal" and head is not None else 0
    pooler = sum(p.numel() for n, p in model.named_parameters() if n.startswith("pooler."))
    non_embedding = sum(p.numel() for p in model.parameters()) - embedding - pooler
    if head_params and head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
        non_embedding -= head_params
    d, layers = config.hidden_size, config.num_hidden_layers
    lengths = np.asarray(lengths, dtype=np.float64)
    attention = (2 if backbone.kind == "causal" else 4) * layers * d * lengths  # per token, context ~ length
    per_prompt = lengths * (2 * non_embedding + attention) + 2 * head_params
    return float(per_prompt.sum()), int(non_embedding)


def _score_rate(scorer, backbone, tok):
    from collm_bench.llm.scorer import score_batches
    from collm_bench.llm.prompts import bucket_batches, collate

    batches = [collate(tok, rows, pad_id=backbone.pad_token_id, padding_side=backbone.padding_side)
               for rows in bucket_batches(tok.lengths, BATCH)]
    score_batches(scorer, batches[:1])  # warm-up
    started = time.perf_counter()
    scores = score_batches(scorer, batches, n=len(tok))
    seconds = time.perf_counter() - started
    padded = sum(b["input_ids"].size for b in batches)
    return scores, seconds, padded


def _cls_cosine(scorer, quantized, backbone, tok):
    """Mean cosine of the [CLS] hidden states of the fp32 and int8 models (head-free fidelity)."""
    import torch

    from collm_bench.llm.scorer import to_device
    from collm_bench.llm.prompts import collate

    batch = to_device(collate(tok, np.arange(BATCH), pad_id=backbone.pad_token_id, padding_side="right"), "cpu")
    with torch.inference_mode():
        a, b = (m.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[:, 0]
                for m in (scorer, quantized))
        return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())


def _load(name):
    from collm_bench.api.registry import load_registry

    return load_registry().get("backbone", name).load()


@pytest.mark.parametrize("name", ["minilm", "tiny-llama"])
def test_scoring_throughput(benchmark, name, matmul_peak):
    import torch

    from collm_bench.llm.scorer import LLMScorer, add_lora, quantize_int8

    torch.manual_seed(0)
    backbone = _load(name)
    scorer = add_lora(LLMScorer(backbone))
    tok = _prompts(backbone)
    peak = matmul_peak()
    result = {}

    def run():
        result["scores"], result["seconds"], result["padded"] = _score_rate(scorer, backbone, tok)
        return result["seconds"]

    benchmark.pedantic(run, rounds=1, iterations=1)
    flops, non_embedding = _model_flops(backbone, tok.lengths)
    seconds = result["seconds"]
    info = {
        "backbone": name, "prompts": len(tok), "batch_size": BATCH, "threads": torch.get_num_threads(),
        "mean_tokens": round(float(tok.lengths.mean()), 1), "padding_share": round(float(1 - tok.lengths.sum() / result["padded"]), 3),
        "prompts_per_second": round(len(tok) / seconds, 1),
        "non_embedding_parameters": non_embedding, "model_gflop": round(flops / 1e9, 2),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "achieved_gflops": round(flops / seconds / 1e9, 2),
        "flop_bound_fraction": round(flops / seconds / peak, 3),
    }
    if name == "minilm":
        quantized = quantize_int8(scorer)
        q_scores, q_seconds, _ = _score_rate(quantized, backbone, tok)
        fp32 = result["scores"]
        info.update({
            "int8_prompts_per_second": round(len(tok) / q_seconds, 1),
            "int8_speedup": round(seconds / q_seconds, 2),
            "int8_score_correlation": round(float(np.corrcoef(fp32, q_scores)[0, 1]), 4),
            "int8_max_abs_diff": round(float(np.abs(fp32 - q_scores).max()), 4),
            "score_std": round(float(fp32.std()), 4),
            "int8_cls_cosine": round(_cls_cosine(scorer, quantized, backbone, tok), 4),
        })
    benchmark.extra_info.update(info)
    print(info)


def test_lora_training_throughput(benchmark):
    import torch

    from collm_bench.llm.scorer import LLMScorer, add_lora, bce_loss, to_device
    from collm_bench.llm.prompts import bucket_batches, collate

    torch.manual_seed(0)
    backbone = _load("minilm")
    scorer = add_lora(LLMScorer(backbone))
    tok = _prompts(backbone, n=TRAIN_BATCH * (TRAIN_STEPS + 1))
    labels = torch.from_numpy(np.random.default_rng(0).integers(0, 2, len(tok)).astype(np.float32))
    batches = [to_device(collate(tok, rows, pad_id=backbone.pad_token_id, padding_side=backbone.padding_side), "cpu")
               for rows in bucket_batches(tok.lengths, TRAIN_BATCH, seed=0)]
    optimizer = torch.optim.AdamW([p for p in scorer.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-3)
    scorer.train()

    def step(batch):
        loss = bce_loss(scorer(batch["input_ids"], batch["attention_mask"]), labels[batch["rows"]])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(batches[0])  # warm-up

    def run():
        started = time.perf_counter()
        for batch in batches[1:]:
            step(batch)
        return time.perf_counter() - started

    seconds = benchmark.pedantic(run, rounds=1, iterations=1)
    samples = sum(len(b["rows"]) for b in batches[1:])
    info = {"backbone": "minilm", "steps": len(batches) - 1, "batch_size": TRAIN_BATCH,
            "threads": torch.get_num_threads(), "mean_tokens": round(float(tok.lengths.mean()), 1),
            "samples_per_second": round(samples / seconds, 1),
            "seconds_per_step": round(seconds / (len(batches) - 1), 3)}
    benchmark.extra_info.update(info)
    print(info)
