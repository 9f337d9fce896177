import numpy as np
import pytest
import torch

from collm_bench.llm.tuning import adamw, cycle_batches, tune, warmup_cosine


def test_adamw_skips_decay_on_biases_and_vectors():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = adamw(list(model.named_parameters()), lr=0.1, weight_decay=0.01)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}


def test_warmup_then_cosine():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=12)
    rates = []
    for _ in range(12):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4] == pytest.approx(1.0) and rates[8] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))


def test_tune_keeps_best_state_and_stops_on_patience():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(2))
    target = torch.tensor([1.0, -1.0])
    # a validation score that peaks early, then degrades: the loop must restore the peak
    scores = iter([0.5, 0.7, 0.9, 0.6, 0.6, 0.6, 0.6])
    states = []

    result = tune(
        named_parameters=[("w", w)], batches=cycle_batches(np.arange(8), 4, seed=0),
        loss_of=lambda rows, step: ((w - target) ** 2).sum(),
        evaluate=lambda: next(scores),
        snapshot=lambda: (states.append(w.detach().clone()), {"w": w.detach().clone()})[1],
        restore=lambda state: w.data.copy_(state["w"]),
        lr=0.1, weight_decay=0.0, max_steps=100, warmup_steps=0, eval_every=2, patience=3,
    )
    assert result.best_step == 4 and result.best_valid_auc == pytest.approx(0.9)
    assert result.stopped == "patience" and result.steps_run == 10
    assert torch.equal(w.detach(), states[-1])
    assert [s for s, _ in result.curve] == [0, 2, 4, 6, 8, 10]


def test_cycle_batches_covers_every_row_each_pass():
    gen = cycle_batches(np.arange(10), 4, seed=1)
    first_pass = np.concatenate([next(gen) for _ in range(3)])
    assert sorted(first_pass.tolist()) == list(range(10))
