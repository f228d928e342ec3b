"""DistributedDataParallel: two CPU processes (gloo) under torchrun match one process.

Why they can match: the sampler is a ``DistributedSampler`` seeded with the recipe's seed in both
cases, so rank r of 2 takes every other index of the same permutation and the two per-rank
batches of 4 together are exactly the single process's batch of 8. DDP averages the two ranks'
gradients; each rank's loss is a mean over its 4 clips, so the average equals the gradient of the
mean over 8. Dropout is off (its masks would come from different random streams).

Tolerance: what remains is float32 summation order (per-rank partial sums, the all-reduce,
one thread per rank vs two), relative differences around 1e-7 per step. Adam divides each
gradient by its own running magnitude, so for a parameter whose true gradient is zero
(the biases in front of the two softmaxes and the key-projection bias of attention) rounding
noise becomes a full lr-sized step (seen: 8e-4 apart after 6 steps); those are excluded from the
weight comparison and checked through the output probabilities, which they cannot change.
Every other weight, and the probabilities, must agree to 1e-4 absolute (measured: <= 3e-5); a
wrong batch split or a missing gradient average moves weights by ~lr = 3e-3 per step. The
zero-gradient biases themselves stay within BIAS_ATOL (measured 2.3e-4): what docs/training.md
states (issue 20 item 5; with dropout on the ranks draw their own masks, a different draw).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avparse.model.config import model_config
from avparse.synthetic import generate_llp
from avparse.train.loop import train
from avparse.train.recipe import recipe

REPO = Path(__file__).resolve().parents[1]
ATOL = 1e-4
BIAS_ATOL = 2e-3
INVARIANT = {"fc_frame_att.bias", "fc_av_att.bias"}
"""Biases before a softmax over time / over the two modalities: adding a constant changes
nothing, so their true gradient is zero and they are compared through the outputs only."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path: Path) -> None:
    root = generate_llp(tmp_path / "root", n_train=24, n_val=6, n_test=6)
    store = tmp_path / "store"
    sets = {"dropout": 0.0}
    rec = {"epochs": 2, "batch_size": 8, "lr": 3e-3}
    single = train(root, tmp_path / "one", model_config("tiny", sets), recipe("tiny", rec),
                   store=store, progress=False, evaluate_test=False)  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        "-m", "avparse", "train", "--data", str(root), "--preset", "tiny", "--out",
        str(tmp_path / "two"), "--store", str(store), "--epochs", "2", "--batch-size", "8",
        "--lr", "3e-3", "--set", "dropout=0", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best epoch") == 1, "only rank 0 prints"
    assert "test:" in proc.stdout
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert len(two["rng"]) == 2 and two["epoch"] == 2
    d = model_config("tiny").d_model
    for key, a in one["model"].items():
        b = two["model"][key]
        if key in INVARIANT:  # true gradient is zero: Adam turns rounding noise into steps
            torch.testing.assert_close(a, b, rtol=0, atol=BIAS_ATOL, msg=key)
            continue
        if key.endswith("in_proj_bias"):  # the key-projection bias shifts every score equally
            torch.testing.assert_close(a[d : 2 * d], b[d : 2 * d], rtol=0, atol=BIAS_ATOL)
            a, b = torch.cat([a[:d], a[2 * d :]]), torch.cat([b[:d], b[2 * d :]])
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL, msg=key)
    # the function itself: probabilities of both final models on the same clips
    probs = [_probs(root, store, one["model"]), _probs(root, store, two["model"])]
    torch.testing.assert_close(probs[0], probs[1], rtol=0, atol=ATOL)
    init = _init_state()
    moved = max(float((one["model"][k] - init[k]).abs().max()) for k in init)
    assert moved > 30 * ATOL, f"training must move weights well beyond the tolerance ({moved})"
    assert single.best_epoch in (1, 2)


def _probs(root: Path, store: Path, state: dict[str, torch.Tensor]) -> torch.Tensor:
    from avparse.data.store import open_split
    from avparse.model.han import HAN
    from avparse.train.evaluate import predict
    from avparse.train.tasks import SplitData

    model = HAN(model_config("tiny", {"dropout": 0.0}))
    model.load_state_dict(state)
    packed = open_split(store, "val")
    data = SplitData("val", packed.filenames, {
        "audio": packed["vggish"], "visual": packed["res152"], "motion": packed["r2plus1d_18"]
    })  # fmt: skip
    frame, video = predict(model, data)
    return torch.cat([torch.from_numpy(frame).flatten(), torch.from_numpy(video).flatten()])


def _init_state() -> dict[str, torch.Tensor]:
    from avparse.model.han import HAN

    torch.manual_seed(recipe("tiny").seed)
    return HAN(model_config("tiny", {"dropout": 0.0})).state_dict()


def test_distributed_helper_is_lazy_and_surfaces_init_errors(monkeypatch) -> None:
    """Reading the ranks imports no torch; a process group that cannot start is one line."""
    from avparse.errors import AvparseError
    from avparse.utils import distributed as D

    code = (
        "import sys; from avparse.utils import distributed as D; d = D.from_env(); "
        "assert 'torch' not in sys.modules, 'torch imported'; print(d.world, d.main)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["1", "True"], proc.stderr
    assert D.per_rank_batch(8, D.Dist(1, 2)) == 4
    with pytest.raises(AvparseError, match="not divisible"):
        D.per_rank_batch(9, D.Dist(1, 2))
    # torchrun's variables without a rendezvous address: init fails and says so, once.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(AvparseError, match="rank 1 of 2: cannot join the torchrun process group"):
        D.setup("cpu")
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(AvparseError, match="torchrun environment is malformed"):
        D.from_env()
