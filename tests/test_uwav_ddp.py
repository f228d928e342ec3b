"""UWAV's loss under torchrun (issue 18 item 6): what N processes reproduce of one process.

Each rank mixes within its own share of the global batch (B / N clips) and draws its own
``lam`` from its own random stream (``seed + rank``), so with ``uwav_mixup`` on two processes
do not draw one process's mixes (documented in ``avparse.train.uwav`` and docs/reliability.md);
every other part of the loss (soft targets, re-weighting, the video BCE) is reproduced.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avparse.synthetic import generate_llp

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_reproduce_uwav_except_the_mixup_draws(tmp_path: Path, cli) -> None:
    """One step (8 clips, batch 8): the same initial weights and the same global batch, so every
    term one process computes is reproduced by two, except the mixup's."""
    root = generate_llp(tmp_path / "root", n_train=8, n_val=4, n_test=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    args = ["train", "--data", str(root), "--preset", "tiny", "--store", str(tmp_path / "store"),
            "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--loss", "uwav",
            "--set", "dropout=0", "--no-progress"]  # fmt: skip
    assert cli(*args, "--out", tmp_path / "one").code == 0
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "avparse", *args,
        "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _log(tmp_path / "one")[0], _log(tmp_path / "two")[0]
    for term in ("train_audio", "train_visual", "train_video"):
        if term in one:
            assert two[term] == pytest.approx(one[term], abs=1e-5), term
    assert "train_audio" in one and "train_audio_mixup" in one
    assert abs(two["train_audio_mixup"] - one["train_audio_mixup"]) > 1e-4  # other draws
