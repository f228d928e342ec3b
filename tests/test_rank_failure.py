"""A failing rank stops the job (issue 18 item 2): two CPU ranks under ``torchrun``.

The failure is injected by a small launcher script that patches one function on one rank and
then runs ``avparse`` as the command line does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import tone_videos

REPO = Path(__file__).resolve().parents[1]

FAIL_MID_EPOCH = """
import sys
import avparse.train.loop as L
from avparse.cli.main import main

original = L._step_loss
calls = [0]

def failing(run, net, inputs, targets):
    calls[0] += 1
    if run.d.rank == 1 and calls[0] == 4:  # epoch 2 (2 steps per epoch)
        raise ValueError("boom on rank 1")
    return original(run, net, inputs, targets)

L._step_loss = failing
sys.exit(main(sys.argv[1:]))
"""

STUCK = """
import sys, time
import torch.distributed as dist
from avparse.utils import distributed as D

d = D.setup("cpu")
if d.rank == 1:
    D.claim_failure("rank 1 cannot go on")
    print("avparse: error: rank 1 cannot go on", file=sys.stderr, flush=True)
    time.sleep(120)  # a failing rank that never ends (stuck in a driver call, say)
else:
    dist.barrier()  # blocked in a collective that rank 1 never joins
print("not reached", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(script: Path, *args: str, timeout_s: str = "60") -> tuple[int, str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["AVPARSE_FAILURE_TIMEOUT"] = timeout_s
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(script), *args]  # fmt: skip
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    return proc.returncode, proc.stderr, time.monotonic() - t0


def _our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("avparse")]


@pytest.mark.slow
def test_exception_mid_epoch_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    """0.1: the other rank printed its own `Connection closed by peer` error too, and run.json
    stayed `running`."""
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=16, n_val=4, n_test=4)
    script = tmp_path / "fail.py"
    script.write_text(FAIL_MID_EPOCH)
    out = tmp_path / "run"
    code, err, seconds = _torchrun(
        script, "train", "--data", str(root), "--preset", "tiny", "--out", str(out),
        "--store", str(tmp_path / "store"), "--epochs", "3", "--batch-size", "8",
        "--no-progress",
    )  # fmt: skip
    assert code == 1
    assert _our_lines(err) == [
        "avparse train: error: unexpected ValueError: boom on rank 1 "
        "(rerun with --debug for details)"
    ], err[-3000:]
    assert seconds < 60
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["reason"] == "rank 1: ValueError: boom on rank 1"
    import torch

    kept = torch.load(out / "checkpoint.pt", weights_only=True)
    assert kept["epoch"] == 1, "the finished epoch's checkpoint is kept"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_a_rank_blocked_by_a_failed_rank_stops_within_the_timeout(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(STUCK)
    code, err, seconds = _torchrun(script, timeout_s="3")
    assert code == 1
    assert _our_lines(err) == ["avparse: error: rank 1 cannot go on"], err[-3000:]
    assert seconds < 40, "rank 0 leaves its collective after 3 s, and torchrun ends rank 1"
    assert "not reached" not in err


FAIL_MODEL_LOAD = """
import os, sys
from avparse.errors import AvparseError
from avparse.harvest.models import HarvestModels
from avparse.cli.main import main

original = HarvestModels.load

def load(self, *, teachers, motion):
    if os.environ["RANK"] == "1":
        raise AvparseError("tiny-clap: cannot load the audio teacher (simulated)")
    return original(self, teachers=teachers, motion=motion)

HarvestModels.load = load
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_models_that_do_not_load_on_one_rank_stop_the_harvest(tmp_path: Path) -> None:
    """0.1: the other rank harvested its share, then waited at a barrier (or printed its own
    lost-connection error); the failing rank's line now comes once and the finished clips stay."""
    pytest.importorskip("av")
    pytest.importorskip("transformers")
    import numpy as np

    from avparse.teachers.tiny import save_tiny_teachers

    videos, labels, _ = tone_videos(tmp_path, 4)
    clip_model, clap_model = save_tiny_teachers(tmp_path / "tiny")
    script = tmp_path / "fail.py"
    script.write_text(FAIL_MODEL_LOAD)
    out = tmp_path / "root"
    code, err, seconds = _torchrun(
        script, "harvest", "--videos", str(videos), "--labels", str(labels), "--out", str(out),
        "--clip-model", str(clip_model), "--clap-model", str(clap_model), "--batch-size", "1",
        "--workers", "1", "--no-progress", "--device", "cpu",
    )  # fmt: skip
    assert code == 1
    assert _our_lines(err) == [
        "avparse harvest: error: tiny-clap: cannot load the audio teacher (simulated)"
    ], err[-3000:]
    assert seconds < 90
    for path in out.rglob("*.npy"):  # whatever rank 0 finished is whole
        np.load(path)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
