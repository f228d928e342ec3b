"""``torchrun -m avparse harvest``: two ranks share the clips, merge one report, match one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SCORE_FOLDERS
from avparse.media.synthetic import write_test_video

REPO = Path(__file__).resolve().parents[1]
CLIPS = ("toneclipAAA", "toneclipBBB", "toneclipCCC", "silentclipD")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dist-harvest")
    folder = root / "videos"
    folder.mkdir()
    for i, clip in enumerate(CLIPS[:3]):
        write_test_video(folder / f"{clip}.mp4", seconds=10, tone_hz=220.0 * (i + 1))
    write_test_video(folder / f"{CLIPS[3]}.mp4", seconds=10, tone_hz=None)
    (folder / "brokenclipE.mp4").write_bytes(np.random.default_rng(1).bytes(8_000))
    (root / "labels.csv").write_text(
        "filename\tevent_labels\n"
        + "".join(f"{c}_0_10\tSpeech,Dog\n" for c in CLIPS)
        + "brokenclipE_0_10\tCat\n"
    )
    return root


def _harvest_args(videos: Path, tiny: tuple[Path, Path], out: Path) -> list[str]:
    return [
        "harvest", "--videos", str(videos / "videos"), "--labels", str(videos / "labels.csv"),
        "--out", str(out), "--clip-model", str(tiny[0]), "--clap-model", str(tiny[1]),
        "--batch-size", "2", "--workers", "1", "--no-progress", "--device", "cpu",
    ]  # fmt: skip


@pytest.mark.slow
def test_two_ranks_share_clips_and_match_one_process(videos: Path, tmp_path: Path, cli) -> None:
    from avparse.teachers.tiny import save_tiny_teachers

    tiny = save_tiny_teachers(tmp_path / "tiny")
    single = tmp_path / "single"
    assert cli(*_harvest_args(videos, tiny, single)).code == 1

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    two = tmp_path / "two"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        "-m", "avparse", *_harvest_args(videos, tiny, two),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0, "a rank with a failed clip exits non-zero"
    assert "1 clip failed" in proc.stderr
    # 5 clips sorted by id, dealt round-robin: each rank harvests 2 good clips (no clip twice)
    assert "harvested 2 clips" in proc.stdout and "(rank 0 of 2)" in proc.stdout
    assert proc.stdout.count("harvested 2 clips") == 2 and "(rank 1 of 2)" in proc.stdout

    # one merged failures report naming the broken file once; no per-rank leftovers
    report = (two / "harvest_failures.tsv").read_text().splitlines()
    assert len(report) == 2 and report[1].startswith("brokenclipE\t")
    assert not list(two.glob("harvest_failures.tsv.rank*"))
    # every good clip harvested, by exactly one rank, with the same numbers as one process
    folders = [*HARVEST_FOLDERS.values(), *SCORE_FOLDERS.values()]
    folders += [FEATURE_KINDS["clip"].folder, FEATURE_KINDS["clap"].folder]
    for folder in folders:
        assert sorted(p.stem for p in (two / folder).glob("*.npy")) == sorted(CLIPS), folder
        for clip in CLIPS:
            a = np.load(single / folder / f"{clip}.npy")
            b = np.load(two / folder / f"{clip}.npy")
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=f"{folder}/{clip}")
    no_audio = (two / "harvest_no_audio.tsv").read_text().splitlines()
    assert len(no_audio) == 2 and no_audio[1].startswith("silentclipD\t")
