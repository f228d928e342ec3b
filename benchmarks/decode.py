"""Benchmark of the decode path (and the tiny-model harvest) against the published two-step path.

Both paths deliver, per 10 s clip, the same data: 10 teacher frames at 224x224, 80 frames at
8 fps at 224x224, and the audio as 48 kHz mono.

(a) ours: one :func:`avparse.media.decode_clip` pass (PyAV; only chosen frames are converted,
    resized by swscale; audio averaged to mono and resampled with soxr);
(b) published: step 1 writes 8 fps JPEG frames and a 48 kHz mono wav to disk (``ffmpeg`` when it
    is on PATH, else emulated with PyAV + PIL, which the output says), step 2 reads them back
    (PIL, ``wave``), resizes the frames and picks the 10 teacher frames from them.

Then the harvest with the tiny offline teachers (``avparse.teachers.tiny``) over the same clips.
Clips: the real LLP clip (when ``../shared`` is present) plus synthetic 320x240 30 fps stereo
clips. Goal: (a) at least 2x faster than (b). Not part of the tests; run by hand::

    .venv/bin/python benchmarks/decode.py [--clips 8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from avparse.media import decode_clip, teacher_frame_indices  # noqa: E402
from avparse.media.synthetic import write_test_video  # noqa: E402

REAL = REPO.parent / "shared" / "data" / "llp" / "video" / "BjCEufrlXm4.mp4"
SIZE = (224, 224)


def ours(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    clip = decode_clip(path, fps=8, fps_size=SIZE)
    assert clip.frames is not None and clip.rate_frames is not None and clip.audio is not None
    return clip.frames, clip.rate_frames, clip.audio


def _extract_ffmpeg(path: Path, folder: Path) -> None:
    quiet = ["-hide_banner", "-loglevel", "error", "-y", "-i", str(path)]
    subprocess.run(
        ["ffmpeg", *quiet, "-vf", "fps=8", "-q:v", "2", str(folder / "%03d.jpg")], check=True
    )
    subprocess.run(
        ["ffmpeg", *quiet, "-vn", "-ac", "1", "-ar", "48000", str(folder / "audio.wav")],
        check=True,
    )


def _extract_emulated(path: Path, folder: Path) -> None:
    """Step 1 without ffmpeg: full-size 8 fps JPEGs with PIL and a 16-bit wav with ``wave``."""
    from PIL import Image

    clip = decode_clip(path, teacher_frames=False, fps=8, fps_size=None)
    assert clip.rate_frames is not None and clip.audio is not None
    for i, frame in enumerate(clip.rate_frames, start=1):
        Image.fromarray(frame).save(folder / f"{i:03d}.jpg", quality=95)
    with wave.open(str(folder / "audio.wav"), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(48_000)
        fh.writeframes((np.clip(clip.audio, -1, 1) * 32767).astype("<i2").tobytes())


def published(
    path: Path, work: Path, use_ffmpeg: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from PIL import Image

    folder = work / path.stem
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (_extract_ffmpeg if use_ffmpeg else _extract_emulated)(path, folder)
    frames = np.stack(
        [
            np.asarray(Image.open(p).convert("RGB").resize(SIZE[::-1], Image.BICUBIC))
            for p in sorted(folder.glob("*.jpg"))
        ]
    )
    with wave.open(str(folder / "audio.wav"), "rb") as fh:
        audio = np.frombuffer(fh.readframes(fh.getnframes()), "<i2").astype(np.float32) / 32768
    teacher = frames[teacher_frame_indices(len(frames))]
    return teacher, frames, audio


def clips(folder: Path, count: int) -> list[Path]:
    out = []
    if REAL.is_file():
        out.append(Path(shutil.copy(REAL, folder / REAL.name)))
    for i in range(count - len(out)):
        path = folder / f"synth{i:06d}.mp4"  # 11 characters, like a YouTube id
        write_test_video(path, size=(240, 320), fps=30, tone_hz=300 + 50 * i)
        out.append(path)
    return out


def timed(fn, paths: list[Path], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in paths:
            fn(p)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def harvest_rate(paths: list[Path], work: Path) -> float:
    from avparse.harvest.job import HarvestConfig, run_harvest
    from avparse.teachers.tiny import save_tiny_teachers

    clip_dir, clap_dir = save_tiny_teachers(work / "tiny")
    labels = work / "labels.csv"
    labels.write_text(
        "filename\tevent_labels\n" + "".join(f"{p.stem}_0_10\tSpeech,Dog\n" for p in paths)
    )
    config = HarvestConfig(
        videos=paths[0].parent,
        labels=labels,
        out=work / "harvest",
        clip_model=str(clip_dir),
        clap_model=str(clap_dir),
        device="cpu",
        batch_size=4,
        progress=False,
    )
    result = run_harvest(config)
    assert not result.failures, result.failures
    return result.clips_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--emulate", action="store_true", help="emulate ffmpeg even if present")
    args = parser.parse_args()
    use_ffmpeg = shutil.which("ffmpeg") is not None and not args.emulate
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "videos").mkdir()
        paths = clips(work / "videos", args.clips)
        a_t, a_f, a_a = ours(paths[0])
        b_t, b_f, b_a = published(paths[0], work / "jpeg", use_ffmpeg)
        print(
            f"shapes: ours teacher {a_t.shape} 8fps {a_f.shape} audio {a_a.shape}; "
            f"published teacher {b_t.shape} 8fps {b_f.shape} audio {b_a.shape}"
        )
        rate_ours = timed(ours, paths, args.repeat)
        rate_pub = timed(lambda p: published(p, work / "jpeg", use_ffmpeg), paths, args.repeat)
        step1 = (
            "ffmpeg "
            + subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()[
                2
            ]
            if use_ffmpeg
            else "emulated with PyAV + PIL (no ffmpeg on PATH)"
        )
        print(
            f"clips: {len(paths)} ({'real LLP clip + ' if REAL.is_file() else ''}synthetic 320x240 30 fps)"
        )
        print(f"ours (one PyAV pass):             {rate_ours:6.2f} clips/s")
        print(f"published (JPEG + wav, read back): {rate_pub:6.2f} clips/s  [step 1: {step1}]")
        print(f"speed-up: {rate_ours / rate_pub:.2f}x (goal >= 2x)")
        print(
            f"harvest with tiny teachers (decode + CLIP + CLAP + writes): {harvest_rate(paths, work):.2f} clips/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
