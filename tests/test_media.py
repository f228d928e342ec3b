"""Decoding: teacher frames, frames at a rate, 48 kHz audio chunks, windows, damaged files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("soxr")

from avparse.errors import AvparseError
from avparse.media import (
    VideoDecodeError,
    chunk_bounds,
    decode_clip,
    frames_at,
    teacher_frame_indices,
)
from avparse.media.synthetic import write_test_video

FPS = 25


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.getbasetemp() / "avparse-media"
    made = {
        "tone": folder / "toneclip001.mp4",
        "silent": folder / "silentclip1.mp4",
        "short": folder / "shortclip01.mp4",
    }
    if not made["tone"].is_file():
        write_test_video(made["tone"], fps=FPS)
        write_test_video(made["silent"], fps=FPS, tone_hz=None)
        write_test_video(made["short"], fps=FPS, seconds=4)
    return made


def frame_time(frame: np.ndarray) -> float:
    """The synthetic video writes int(25 * t) % 256 into the blue channel."""
    return float(frame[..., 2].mean()) / 25


def test_indices_and_chunks_follow_the_reference():
    assert teacher_frame_indices(300).tolist() == [0, 33, 66, 100, 133, 166, 199, 233, 266, 299]
    assert teacher_frame_indices(4).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    bounds = chunk_bounds(480_000)
    assert bounds == [(48_000 * i, 48_000) for i in range(10)]
    assert chunk_bounds(481) == [(round(i * 48.1), 48) for i in range(10)]


def test_ten_second_clip(videos):
    clip = decode_clip(videos["tone"], frame_size=None)
    assert clip.num_frames == 10 * FPS and clip.seconds == 10.0
    assert clip.frames.shape == (10, 64, 64, 3) and clip.frames.dtype == np.uint8
    expected = teacher_frame_indices(250) / FPS
    got = np.array([frame_time(f) for f in clip.frames])
    assert np.abs(got - np.floor(expected * 25) / 25).max() < 0.2
    assert clip.audio.shape == (480_000,) and clip.audio.dtype == np.float32
    chunks = clip.audio_chunks()
    assert chunks.shape == (10, 48_000)
    rms = np.sqrt((chunks**2).mean(1))
    # loudness 0.1 + 0.08 * (second % 5): each chunk must carry its own second.
    want = (0.1 + 0.08 * (np.arange(10) % 5)) / np.sqrt(2)
    assert np.allclose(rms, want, rtol=0.08), rms


def test_teacher_frames_are_resized(videos):
    clip = decode_clip(videos["tone"])
    assert clip.frames.shape == (10, 224, 224, 3)


def test_no_audio_stream_is_recorded_not_raised(videos):
    clip = decode_clip(videos["silent"])
    assert clip.audio is None and not clip.has_audio
    assert clip.audio_note == "no audio stream"
    assert clip.audio_chunks() is None
    assert clip.frames.shape == (10, 224, 224, 3)


def test_short_clip_is_cut_into_ten_equal_parts(videos):
    clip = decode_clip(videos["short"], frame_size=None)
    assert clip.seconds == pytest.approx(4.0, abs=0.05)
    assert clip.num_frames == 4 * FPS
    assert clip.audio.shape == (192_000,)
    assert clip.audio_chunks().shape == (10, 19_200)
    times = [frame_time(f) for f in clip.frames]
    assert times[0] < 0.1 and times[-1] > 3.8


def test_windows_of_a_long_file(videos):
    clip = decode_clip(videos["tone"], window=1, seconds=4, frame_size=None)
    assert clip.start == 4 and clip.seconds == 4 and clip.num_frames == 4 * FPS
    assert frame_time(clip.frames[0]) == pytest.approx(4.0, abs=0.1)
    assert frame_time(clip.frames[-1]) == pytest.approx(7.96, abs=0.1)
    rms = np.sqrt((clip.audio_chunks() ** 2).mean(1))
    # seconds 4..7 have loudness 0.42, 0.1, 0.18, 0.26 (x 1/sqrt(2)).
    assert rms[0] > rms[4] and rms[3] < rms[4] < rms[6]
    tail = decode_clip(videos["tone"], window=2, seconds=4)
    assert tail.seconds == pytest.approx(2.0, abs=0.05) and tail.audio.shape == (96_000,)
    with pytest.raises(VideoDecodeError, match="window 3 starts"):
        decode_clip(videos["tone"], window=3, seconds=4)


def test_frames_at_a_rate(videos):
    frames = frames_at(videos["tone"], fps=8, size=(32, 48))
    assert frames.shape == (80, 32, 48, 3)
    frames = frames_at(videos["tone"], fps=8, size=None)
    times = np.array([frame_time(f) for f in frames])
    assert np.abs(times - np.arange(80) / 8).max() < 0.15  # nearest frame + coding noise
    assert frames_at(videos["short"], fps=16, size=(16, 16)).shape == (64, 16, 16, 3)


def test_real_llp_clip(llp_video):
    clip = decode_clip(llp_video, fps=8, fps_size=(112, 112))
    assert clip.num_frames == 300
    assert clip.frame_indices.tolist() == teacher_frame_indices(300).tolist()
    assert clip.rate_frames.shape == (80, 112, 112, 3)
    assert clip.audio.shape == (480_000,)
    assert 0.01 < float(clip.audio.std()) < 0.5
    assert np.abs(clip.audio).max() <= 1.0


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 500])
def test_garbage_and_empty_files(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError) as info:
        decode_clip(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, AvparseError)


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        decode_clip(tmp_path / "nope.mp4")


@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_truncated_file_errors_or_decodes_what_is_there(videos, tmp_path, keep):
    data = videos["tone"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    try:
        clip = decode_clip(path)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
    else:
        assert clip.frames.shape == (10, 224, 224, 3)
        assert 0 < clip.num_frames <= 250


def test_damage_inside_the_stream_is_skipped(videos, tmp_path):
    data = bytearray(videos["tone"].read_bytes())
    rng = np.random.default_rng(0)
    for pos in rng.integers(len(data) // 3, len(data) * 2 // 3, 40):
        data[pos : pos + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    try:
        clip = decode_clip(path)
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
    else:
        assert clip.frames.shape[0] == 10 and clip.num_frames > 0


def test_teacher_frames_from_8_fps_frames_as_published(videos):
    """The published harvest takes round(linspace(0, n-1, 10)) of ffmpeg's 8 fps frames."""
    clip = decode_clip(videos["tone"], frame_size=None, teacher_fps=8)
    assert clip.frames.shape == (10, 64, 64, 3)
    assert clip.frame_indices.tolist() == teacher_frame_indices(80).tolist()
    times = teacher_frame_indices(80) / 8  # the 8 fps frame times the teacher sees
    got = np.array([frame_time(f) for f in clip.frames])
    assert np.abs(got - np.floor(times * FPS) / FPS).max() < 0.2
    # the same frames as picking from all frames at 8 fps
    rate = decode_clip(videos["tone"], frame_size=None, fps=8, teacher_frames=False).rate_frames
    assert np.array_equal(clip.frames, rate[teacher_frame_indices(80)])
    # differs from 0.1's pick over all 250 frames
    assert not np.array_equal(clip.frames, decode_clip(videos["tone"], frame_size=None).frames)
