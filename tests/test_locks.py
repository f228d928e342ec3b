"""One job per folder (issue 18 item 1): real concurrent processes on one run folder, harvest
root, parse output folder or packed store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avparse.utils.lock import LOCK_NAME, FolderBusy, hold_folder

REPO = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from avparse.utils.lock import hold_folder
with hold_folder(sys.argv[1], command="avparse train --out held"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    for key in ("WORLD_SIZE", "RANK", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    env.update(extra)
    return env


def _holder(folder: Path, seconds: float = 60, **env: str) -> subprocess.Popen:
    """A process holding ``folder``; returns once it says so."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder), str(seconds)],
        stdout=subprocess.PIPE, text=True, env=_env(**env),
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()  # SIGKILL: the OS lock must go with the process
    proc.wait(timeout=30)


def test_second_job_on_a_held_folder_stops_at_once_naming_the_holder(tmp_path: Path, cli):
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        t0 = time.monotonic()
        res = cli("train", "--data", tmp_path / "nodata", "--out", out, "--preset", "tiny")
        assert time.monotonic() - t0 < 5
        assert res.code == 2
        line = res.err.strip()
        assert line.count("\n") == 0, line
        assert f"{out}: in use by another avparse job (pid {holder.pid} on " in line
        assert socket.gethostname() in line and "`avparse train --out held`" in line
        assert "since 20" in line and "wait for it to finish" in line and "--out" in line
        # the same for every command that writes a folder: nothing is read or written first
        for args in (
            ("evaluate", "--data", tmp_path / "nodata", "--checkpoint", "x", "--out", out),
            ("parse", tmp_path / "none.mp4", "--out", out),
            ("harvest", "--videos", tmp_path, "--labels", tmp_path / "l.csv", "--out", out),
            ("teacher", "train", "--data", tmp_path / "nodata", "--out", out),
            ("teacher", "label", "--data", out, "--teacher", tmp_path / "none"),
        ):
            res = cli(*args)
            assert res.code == 2 and f"pid {holder.pid}" in res.err, (args, res.err)
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    finally:
        _kill(holder)


def test_a_lock_left_by_kill_9_does_not_block_and_is_cleaned_up(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = _holder(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert (out / LOCK_NAME).is_file()  # the file stays, the OS lock is gone with the process
    with hold_folder(out):
        assert str(os.getpid()) in (out / LOCK_NAME).read_text()
    assert list(out.iterdir()) == [], "the lock file goes with the job"


def test_ranks_of_one_torchrun_job_share_its_lock_and_other_jobs_do_not(tmp_path: Path):
    out = tmp_path / "root"
    job = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": "29400"}  # fmt: skip
    rank0 = _holder(out, RANK="0", **job)
    try:
        rank1 = _holder(out, seconds=0, RANK="1", **job)  # same job: goes on
        assert rank1.stdout is not None and rank1.stdout.readline().strip() == "released"
        assert rank1.wait(timeout=30) == 0
        other = subprocess.run(
            [sys.executable, "-c", HOLD, str(out), "0"], capture_output=True, text=True,
            env=_env(RANK="1", **{**job, "TORCHELASTIC_RUN_ID": "other"}), timeout=60,
        )  # fmt: skip
        assert other.returncode != 0 and "FolderBusy" in other.stderr
        assert f"pid {rank0.pid}" in other.stderr
    finally:
        _kill(rank0)


def test_lock_is_reentrant_in_one_process_and_keeps_written_folders(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with hold_folder(out), hold_folder(out):
        (out / "result.txt").write_text("x")
    assert (out / "result.txt").is_file() and not (out / LOCK_NAME).exists()
    holder = _holder(out)
    try:
        with (
            pytest.raises(FolderBusy, match="choose another --store"),
            hold_folder(out, flag="--store"),
        ):
            pass
    finally:
        _kill(holder)


def test_second_job_packing_a_held_store_waits_for_it(tmp_path: Path) -> None:
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=4, n_val=2, n_test=2)
    store = tmp_path / "store"
    holder = _holder(store)
    cmd = [sys.executable, "-m", "avparse", "data", "pack", str(root), "--out", str(store),
           "--no-progress"]  # fmt: skip
    # the holder lets go only once the packer says it waits (no race with its start-up time)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())  # fmt: skip
    try:
        assert proc.stderr is not None
        said = proc.stderr.readline()
        assert f"{store}: in use by another avparse job (pid {holder.pid}" in said
        assert "; waiting" in said
        assert not (store / "manifest.json").exists()  # nothing packed while it waits
    finally:
        _kill(holder)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0, rest
    assert (store / "manifest.json").is_file() and not (store / LOCK_NAME).exists()


def test_two_real_train_runs_into_one_folder(tmp_path: Path) -> None:
    """0.1: both ran to the end (the check only saw run.json, written after packing)."""
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=8, n_val=2, n_test=2)
    out = tmp_path / "run"
    base = [sys.executable, "-m", "avparse", "train", "--data", str(root), "--preset", "tiny",
            "--out", str(out), "--store", str(tmp_path / "store"), "--batch-size", "4",
            "--quiet"]  # fmt: skip
    first = subprocess.Popen([*base, "--epochs", "500"], env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (out / LOCK_NAME).is_file() or str(first.pid) not in _text(out / LOCK_NAME):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr
            time.sleep(0.05)
        second = subprocess.run([*base, "--epochs", "1"], capture_output=True, text=True,
                                env=_env(), timeout=120)  # fmt: skip
        assert second.returncode == 2
        assert f"in use by another avparse job (pid {first.pid} on" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        _kill(first)  # kill -9 mid-run
    # the next run is not blocked by the dead one's lock
    third = subprocess.run([*base, "--epochs", "1", "--overwrite"], capture_output=True,
                           text=True, env=_env(), timeout=120)  # fmt: skip
    assert third.returncode == 0, third.stderr
    assert not (out / LOCK_NAME).exists()


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
