"""Disk full (issue 18 item 3): `PATH: no space left on device`, finished files intact, no
temporary file, and the same command continues once space is freed.

Where the test may mount a small tmpfs (root on Linux) the commands run on a really full file
system; the writer's mapping is also tested everywhere with an injected short write.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from avparse.utils import atomic
from conftest import tone_videos


class SmallDisk:
    """A mounted tmpfs that can be filled up to a few free bytes, and emptied again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self, leave: int = 0) -> None:
        with open(self.filler, "ab") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        if leave:
            size = self.filler.stat().st_size
            os.truncate(self.filler, max(0, size - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
            capture_output=True, timeout=20,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        proc = None
    if proc is None or proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?); test_short_write_... covers it")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def _out_of_space(res, prefix: str) -> None:
    """The command stopped (exit 2), its last line ``<prefix>...: no space left on device``."""
    assert res.code == 2, res.err
    line = res.err.strip().splitlines()[-1]
    assert line.startswith(prefix), line
    assert line.endswith(": no space left on device"), line


def test_short_write_on_a_full_disk_names_the_file(tmp_path: Path, monkeypatch, cli) -> None:
    """0.1: `avparse harvest: error: 7680 requested and 3040 written` (numpy; no path)."""
    target = tmp_path / "feats" / "clip.npy"
    atomic.save_npy(target, np.ones(3, np.float32))

    def short_write(file, array, *args, **kwargs):
        Path(file).write_bytes(b"\x93NUMPY partial")
        raise OSError("7680 requested and 3040 written")

    monkeypatch.setattr(np, "save", short_write)
    monkeypatch.setattr(
        atomic.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1 << 30, 1 << 30, 0)
    )
    with pytest.raises(OSError) as info:
        atomic.save_npy(target, np.zeros(3, np.float32))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    from avparse.cli.main import describe

    assert describe(info.value) == (f"{target}: no space left on device", 2)
    np.testing.assert_array_equal(np.load(target), np.ones(3))  # the finished file is intact
    assert _temps(tmp_path) == []


def test_other_write_errors_keep_their_own_reason(tmp_path: Path, monkeypatch) -> None:
    def refuse(file, array, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(file))

    monkeypatch.setattr(np, "save", refuse)
    with pytest.raises(PermissionError):
        atomic.save_npy(tmp_path / "a.npy", np.zeros(3))
    assert _temps(tmp_path) == []


@pytest.mark.slow
def test_pack_train_and_evaluate_on_a_full_disk(small_disk: SmallDisk, tmp_path: Path, cli):
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=8, n_val=2, n_test=2)
    store = small_disk.path / "store"
    small_disk.fill(leave=48 * 1024)  # room for some arrays, not all
    _out_of_space(
        cli("data", "pack", root, "--out", store, "--no-progress"), f"avparse data: error: {store}/"
    )
    assert _temps(small_disk.path) == []
    for path in store.rglob("*.npy"):
        np.load(path)  # every array written is whole
    small_disk.free()
    assert cli("data", "pack", root, "--out", store, "--no-progress").code == 0

    out = small_disk.path / "run"
    args = ["train", "--data", root, "--preset", "tiny", "--out", out, "--store", store,
            "--epochs", "1", "--batch-size", "4", "--quiet"]  # fmt: skip
    small_disk.fill()
    res = cli(*args)
    assert res.code == 2 and res.err.strip().endswith(": no space left on device"), res.err
    assert f"error: {small_disk.path}/" in res.err  # the store's manifest or the run's file
    assert _temps(small_disk.path) == []
    small_disk.free()
    res = cli(*args)  # the same command, once space is freed
    assert res.code == 0, res.err

    evald = small_disk.path / "eval"
    args = ["evaluate", "--data", root, "--checkpoint", out / "model", "--split", "val",
            "--out", evald, "--store", store, "--no-progress"]  # fmt: skip
    small_disk.fill()
    res = cli(*args)
    assert res.code == 2 and f"{evald}/" in res.err and "no space left on device" in res.err
    assert _temps(small_disk.path) == []
    small_disk.free()
    assert cli(*args).code == 0


@pytest.mark.slow
def test_harvest_and_parse_on_a_full_disk_then_continue(small_disk: SmallDisk, tmp_path: Path, cli):
    """0.1: `avparse harvest: error: 7680 requested and 3040 written`."""
    pytest.importorskip("av")
    pytest.importorskip("transformers")
    from avparse.teachers.tiny import save_tiny_teachers

    videos, labels, clips = tone_videos(tmp_path, 3)
    clip_model, clap_model = save_tiny_teachers(tmp_path / "tiny")
    root = small_disk.path / "root"
    args = ["harvest", "--videos", videos, "--labels", labels, "--out", root,
            "--clip-model", clip_model, "--clap-model", clap_model, "--batch-size", "1",
            "--workers", "1", "--no-progress", "--device", "cpu"]  # fmt: skip
    small_disk.fill(leave=64 * 1024)
    _out_of_space(cli(*args), f"avparse harvest: error: {root}/")
    assert _temps(small_disk.path) == []
    for path in root.rglob("*.npy"):
        np.load(path)
    small_disk.free()
    res = cli(*args)  # the same command continues where it stopped
    assert res.code == 0, res.err
    assert "harvested" in res.out

    parsed = small_disk.path / "parsed"
    args = ["parse", *(videos / f"{c}.mp4" for c in clips), "--zero-shot", "--classes",
            "speech,dog", "--clip-model", clip_model, "--clap-model", clap_model,
            "--out", parsed, "--plot", "--no-progress"]  # fmt: skip
    small_disk.fill()
    _out_of_space(cli(*args), f"avparse parse: error: {parsed}")
    assert _temps(small_disk.path) == []
    small_disk.free()
    assert cli(*args).code == 0
    assert sorted(p.name for p in parsed.glob("*.json")) == sorted(f"{c}.json" for c in clips)


def test_an_append_on_a_full_disk_names_the_file(tmp_path: Path, monkeypatch) -> None:
    """results.jsonl lines (parse): a short write or ENOSPC is `PATH: no space left on device`."""
    target = tmp_path / "results.jsonl"
    atomic.append_line(target, '{"a": 1}')
    for fake in (lambda fd, data: 3, lambda fd, data: (_ for _ in ()).throw(OSError(28, "x"))):
        monkeypatch.setattr(atomic.os, "write", fake)
        with pytest.raises(OSError) as info:
            atomic.append_line(target, '{"b": 2}')
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
        assert info.value.strerror == "no space left on device"
