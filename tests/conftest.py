"""Shared fixtures: the real data beside the checkout (skipped when absent) and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVPARSE_SHARED", REPO.parent / "shared"))
SRC = REPO / "src"


@pytest.fixture(scope="session")
def llp_root() -> Path:
    """The real LLP annotation files; tests using it skip where ``../shared`` is absent."""
    root = SHARED / "data" / "llp"
    if not (root / "AVVP_test_pd.csv").is_file():
        pytest.skip(f"real LLP annotations not found at {root} (../shared absent)")
    return root


@pytest.fixture(scope="session")
def llp_video(llp_root: Path) -> Path:
    path = llp_root / "video" / "BjCEufrlXm4.mp4"
    if not path.is_file():
        pytest.skip(f"real LLP clip not found at {path}")
    return path


@pytest.fixture(scope="session")
def ave_root() -> Path:
    root = SHARED / "data" / "ave"
    if not (root / "Annotations.txt").is_file():
        pytest.skip(f"real AVE annotations not found at {root} (../shared absent)")
    return root


@pytest.fixture(scope="session")
def unav_root() -> Path:
    """The real UnAV-100 annotation file; tests using it skip where ``../shared`` is absent."""
    root = SHARED / "data" / "unav100"
    if not (root / "unav100_annotations.json").is_file():
        pytest.skip(f"real UnAV-100 annotations not found at {root} (../shared absent)")
    return root


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``avparse ARGS`` in-process through ``main(argv)``; returns code, stdout, stderr."""
    from avparse.cli.main import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tone_videos(folder: Path, count: int) -> tuple[Path, Path, list[str]]:
    """``count`` 10-s test videos ``toneclipAAA``, ``toneclipBBB``, ... (tones 220 Hz apart) in
    ``folder/videos`` and their weak labels (all ``Speech``) in ``folder/labels.csv``:
    ``(videos, labels, clip ids)``."""
    from avparse.media.synthetic import write_test_video

    videos = folder / "videos"
    videos.mkdir()
    clips = [f"toneclip{c * 3}" for c in "ABCDEFGHIJ"[:count]]
    for i, clip in enumerate(clips):
        write_test_video(videos / f"{clip}.mp4", seconds=10, tone_hz=220.0 * (i + 1))
    labels = folder / "labels.csv"
    labels.write_text("filename\tevent_labels\n" + "".join(f"{c}_0_10\tSpeech\n" for c in clips))
    return videos, labels, clips


def run_subprocess(*args: str, cwd: Path | None = None, timeout: float = 600) -> CliResult:
    """Run ``python -m avparse ARGS`` in a fresh interpreter (whole-process behaviour)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "avparse", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def han_output():
    """Factory of a ``HANOutput`` from random segment logits (B, 10, 2, C), for loss tests."""
    import torch

    from avparse.model.han import HANOutput

    def make(b: int = 3, c: int = 4, seed: int = 0) -> HANOutput:
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(b, 10, 2, c, generator=g)
        prob = torch.sigmoid(logits)
        return HANOutput(
            prob.mean((1, 2)), prob[:, :, 0].mean(1), prob[:, :, 1].mean(1), prob, logits
        )

    return make
