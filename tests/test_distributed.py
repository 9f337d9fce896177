"""Data parallelism under torchrun (CPU, gloo): a run at world size 2 gives the predictions and
metrics of world size 1, and only rank 0 writes."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from collm_bench._util import distributed
from collm_bench.records.predictions import read_predictions
from collm_bench.testing import tiny_dataset

TALLREC = ["--method", "tallrec", "--backbone", "tiny-llama", "--full-test", "--set", "max_steps=4",
           "--set", "eval_every=2", "--set", "batch_size=7", "--set", "history_titles=3", "--set", "valid_rows=12",
           "--set", "warmup_steps=1", "--set", "lora_dropout=0"]  # no dropout: the same draws at any world size
ICL = ["--method", "icl", "--backbone", "tiny-llama", "--full-test", "--set", "history_titles=3"]


def test_shards_cover_every_row_and_weights_make_the_global_mean(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    parts, weights = [], []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        parts.append(distributed.shard(5))
        mine, weight = distributed.local_part(np.array([10, 11, 12, 13, 14]))
        weights.append((mine, weight))
    assert [p.tolist() for p in parts] == [[0, 2, 4], [1, 3, 0]]  # padded like DistributedSampler
    (a, wa), (b, wb) = weights
    assert a.tolist() == [10, 12, 14] and b.tolist() == [11, 13]
    # the mean of (weight x local mean) over ranks is the global batch's mean
    assert (wa * a.mean() + wb * b.mean()) / 2 == pytest.approx(np.mean([10, 11, 12, 13, 14]))
    mine, weight = distributed.local_part(np.array([7]))  # rank 1 of a one-row batch: nothing to do
    assert len(mine) == 0 and weight == 0.0


def _run(args, world, tmp_path, dataset, name):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
           "COLLM_BENCH_CACHE": str(tmp_path / f"cache-{name}")}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world}",
                 "--module"] if world > 1 else [sys.executable, "-m"])
    out = tmp_path / f"runs-{name}"
    done = subprocess.run(launcher + ["collm_bench", "run", "--dataset", dataset, "--out", str(out)] + args,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = [p.parent for p in out.glob("*/record.json") if "tallrec" in p.parent.name
                  or "icl" in p.parent.name]
    return run_dir, json.loads((run_dir / "record.json").read_text()), done


ONE_ROW = [a if a != "batch_size=7" else "batch_size=1" for a in TALLREC]  # rank 1 always idle


@pytest.mark.parametrize("method, args", [("icl", ICL), ("tallrec", TALLREC), ("tallrec", ONE_ROW)],
                         ids=["icl", "tallrec", "tallrec-one-row-batches"])
def test_world_size_two_equals_one(tmp_path, method, args):
    dataset = str(tmp_path / "tiny")
    tiny_dataset(dataset, n_users=15, rows_per_user=15)  # 45 test rows, batches of 7: uneven shares
    one_dir, one, _ = _run(args, 1, tmp_path, dataset, "one")
    two_dir, two, done = _run(args, 2, tmp_path, dataset, "two")
    assert one["run_id"] == two["run_id"]
    a, b = read_predictions(one_dir), read_predictions(two_dir)
    assert a[["user", "item", "label"]].equals(b[["user", "item", "label"]])  # same rows, same order
    assert np.allclose(a["score"], b["score"], atol=1e-5)
    for subset, values in one["metrics"].items():
        for metric, value in values.items():
            assert two["metrics"][subset][metric] == pytest.approx(value, abs=1e-6), (subset, metric)
    assert two["device"].endswith("x 2 processes (torchrun)")
    assert done.stdout.count("runs written under") == 1  # rank 0 alone reports


def test_a_suite_under_torchrun_writes_once_and_skips_alike(tmp_path):
    dataset = str(tmp_path / "tiny")
    tiny_dataset(dataset)
    suite = tmp_path / "suite.toml"
    suite.write_text(f'[suite]\nout = "runs"\ndatasets = ["{dataset}"]\nbackbones = ["tiny-llama"]\nfull_test = true\n\n'
                     '[[entry]]\nmethod = "icl"\noptions = {history_titles = "3"}\n\n'
                     '[[entry]]\nname = "m"\nmethods = ["mf"]\nencoder_options = {max_epochs = "2", dim = "8"}\n')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
           "COLLM_BENCH_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--module",
               "collm_bench", "suite", str(suite)]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("2 runs: 2 ran") == 1
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("2 runs: 2 skipped") == 1
    assert len(list((tmp_path / "runs").glob("*/record.json"))) == 2


_UNUSED = """
import torch, torch.distributed as dist
from collm_bench._util import distributed
dist.init_process_group("gloo")
used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
(used * (dist.get_rank() + 1)).sum().backward()   # ``unused`` takes no part, on any rank
distributed.average_gradients([used, unused])
assert unused.grad is None, unused.grad
assert torch.allclose(used.grad, torch.full((3,), 1.5)), used.grad
opt = torch.optim.AdamW([used, unused], lr=0.1, weight_decay=0.5)
opt.step()
assert torch.equal(unused.detach(), torch.ones(2))  # not moved by weight decay, as in one process
print("OK", dist.get_rank())
dist.destroy_process_group()
"""


def test_a_parameter_no_rank_used_keeps_no_gradient(tmp_path):
    """LLaRA's projector on a text-only step: the optimizer must leave it alone at any world size."""
    script = tmp_path / "unused.py"
    script.write_text(_UNUSED)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("OK") == 2
