"""Videos of any length and audio-only files: decoding, whole-video harvest, parse (issue 15
items 4 and 8, issue 18 item 4). Tiny offline teachers; the real UnAV-100 video and LLP clip
where ``../shared`` is there."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from avparse.media import (
    AUDIO_RATE,
    decode_clip,
    media_duration,
    segment_chunks,
    segment_count,
    segment_windows,
)
from avparse.media.synthetic import AUDIO_CODECS, write_test_audio, write_test_video

UNAV_VIDEO = "--HuBNHXu9I"


@pytest.fixture(scope="session")
def unav_video(llp_root: Path) -> Path:
    path = llp_root.parent / "unav100" / "video" / f"{UNAV_VIDEO}.mp4"
    if not path.is_file():
        pytest.skip(f"{path} absent (the real UnAV-100 video lives in ../shared)")
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("transformers")
    from avparse.teachers.tiny import save_tiny_teachers

    return save_tiny_teachers(tmp_path_factory.getbasetemp() / "avparse-tiny-teachers")


def test_segment_count_and_windows():
    assert segment_count(10.0) == 10
    assert segment_count(60.06) == 60  # a container's few ms past the content add no segment
    assert segment_count(59.5) == 60
    assert segment_count(0.05) == 1
    assert segment_windows(25) == [10, 10, 5]
    assert segment_windows(10) == [10]
    chunks = segment_chunks(np.ones(int(2.5 * AUDIO_RATE), np.float32), 3)
    assert chunks.shape == (3, AUDIO_RATE)
    assert chunks[2, : AUDIO_RATE // 2].all() and not chunks[2, AUDIO_RATE // 2 :].any()


def test_ten_second_window_of_segments_is_the_clip_rule(tmp_path):
    """Window 0 of a long video with 10 segments decodes exactly as a 10 s clip does."""
    video = write_test_video(tmp_path / "v.mp4", seconds=10)
    a = decode_clip(video, frame_size=None, teacher_fps=8)
    b = decode_clip(video, frame_size=None, teacher_fps=8, segments=10, audio_only=True)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert np.array_equal(a.audio_chunks(), segment_chunks(b.audio, 10))


def test_tail_window_has_one_frame_per_segment(tmp_path):
    video = write_test_video(tmp_path / "v.mp4", seconds=23.5)
    d = media_duration(video)
    sizes = segment_windows(segment_count(d))
    assert sizes == [10, 10, 4]
    clip = decode_clip(video, window=2, segments=4, frame_size=None, teacher_fps=8)
    assert clip.frames.shape[0] == 4 and clip.seconds == pytest.approx(3.5, abs=0.05)


@pytest.mark.parametrize("suffix", sorted(AUDIO_CODECS))
def test_audio_only_files_decode_as_sound_without_picture(tmp_path, suffix):
    path = write_test_audio(tmp_path / f"a{suffix}", seconds=3.5)
    assert media_duration(path, audio_only=True) == pytest.approx(3.5, abs=0.05)
    clip = decode_clip(path, audio_only=True, segments=4)
    assert clip.frames is None and not clip.has_video and clip.video_note == "no video stream"
    assert clip.has_audio and np.abs(clip.audio).max() > 0.05
    from avparse.media import VideoDecodeError

    with pytest.raises(VideoDecodeError, match="no video stream"):
        decode_clip(path)  # without audio_only: refused as before


# ---- whole-video harvest ---------------------------------------------------------------------


def _harvest(cli, videos: Path, labels: Path, out: Path, tiny, *extra: str):
    return cli(
        "harvest", "--videos", videos, "--labels", labels, "--out", out,
        "--clip-model", tiny[0], "--clap-model", tiny[1], "--batch-size", "3",
        "--no-progress", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def long_root(tmp_path_factory, tiny):
    """A 23.5 s video, a 10 s video, a silent 12 s video and a 4 s wav, harvested whole."""
    from avparse.cli.main import main

    base = tmp_path_factory.mktemp("whole")
    videos = base / "videos"
    write_test_video(videos / "longvideo01.mp4", seconds=23.5)
    write_test_video(videos / "tenseconds1.mp4", seconds=10)
    write_test_video(videos / "silentlong1.mp4", seconds=12, tone_hz=None)
    write_test_audio(videos / "audioonly01.wav", seconds=4)
    labels = base / "labels.csv"
    labels.write_text(
        "filename\tevent_labels\n"
        "longvideo01\tSpeech,Dog\n"
        "tenseconds1\tCello\n"
        "silentlong1\tCar\n"
        "audioonly01\tSpeech\n"
    )
    out = base / "root"
    args = ["harvest", "--videos", videos, "--labels", labels, "--out", out]
    args += ["--clip-model", tiny[0], "--clap-model", tiny[1], "--span", "full"]
    code = main([str(a) for a in [*args, "--batch-size", "3", "--no-progress"]])
    return code, base, out


def test_whole_harvest_writes_one_row_per_second(long_root):
    from avparse.harvest.outputs import ClipOutputs
    from avparse.vocab import LLP

    code, _, root = long_root
    assert code == 0
    expect = {"longvideo01": 24, "tenseconds1": 10, "silentlong1": 12, "audioonly01": 4}
    for clip, t in expect.items():
        out = ClipOutputs(root, clip)
        assert np.load(out.segments("visual")).shape == (t, 16)
        assert np.load(out.segments("audio")).shape == (t, 16)
        for m in ("visual", "audio"):
            assert np.load(out.scores(m)).shape == (t, len(LLP))
            assert np.load(out.hard(m)).shape == (t, len(LLP))
            assert np.load(out.soft(m)).shape == (t, len(LLP))
        assert not out.features("visual").exists()  # no 10-segment student inputs
    assert ClipOutputs(root, "silentlong1").silent
    assert not np.load(ClipOutputs(root, "silentlong1").hard("audio")).any()
    blind = ClipOutputs(root, "audioonly01")
    assert blind.blind and not blind.silent
    assert not np.load(blind.hard("visual")).any()
    # labels stay inside the weak labels
    hard = np.load(ClipOutputs(root, "longvideo01").hard("visual"))
    allowed = [LLP.index("Speech"), LLP.index("Dog")]
    assert not np.delete(hard, allowed, axis=1).any()


def test_whole_harvest_of_ten_seconds_matches_the_window_harvest(long_root, tiny, cli, tmp_path):
    """A 10 s video gives the same CLIP rows, CLAP chunk embeddings and logits either way."""
    from avparse.harvest.outputs import ClipOutputs

    _, base, whole = long_root
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(base / "videos" / "tenseconds1.mp4", videos)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename\tevent_labels\ntenseconds1\tCello\n")
    window = tmp_path / "root"
    assert _harvest(cli, videos, labels, window, tiny).code == 0
    a, b = ClipOutputs(whole, "tenseconds1"), ClipOutputs(window, "tenseconds1")
    for m in ("visual", "audio"):
        np.testing.assert_allclose(np.load(a.segments(m)), np.load(b.segments(m)), atol=1e-5)
        np.testing.assert_allclose(np.load(a.scores(m)), np.load(b.scores(m)), atol=1e-4)
        assert np.array_equal(np.load(a.hard(m)), np.load(b.hard(m)))
    # the window harvest's CLIP segment rows are its CLIP features
    assert np.array_equal(np.load(b.segments("visual")), np.load(b.features("visual")))


def test_whole_harvest_rerun_skips_and_span_change_is_refused(long_root, tiny, cli):
    _, base, root = long_root
    again = _harvest(cli, base / "videos", base / "labels.csv", root, tiny, "--span", "full")
    assert again.code == 0 and "skipped 4 finished" in again.out
    other = _harvest(cli, base / "videos", base / "labels.csv", root, tiny)
    assert other.code == 2 and "span" in other.err


def test_whole_harvest_refuses_r2plus1d(tiny, cli, tmp_path):
    r = _harvest(cli, tmp_path, tmp_path / "l.csv", tmp_path / "o", tiny, "--span", "full",
                 "--r2plus1d", "download")  # fmt: skip
    assert r.code == 2 and "--span window" in r.err


def test_audio_only_file_in_a_ten_second_harvest(tiny, cli, tmp_path):
    from avparse.harvest.outputs import ClipOutputs

    videos = tmp_path / "v"
    write_test_audio(videos / "m4aclip0001.m4a", seconds=10)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename\tevent_labels\nm4aclip0001\tSpeech,Dog\n")
    r = _harvest(cli, videos, labels, tmp_path / "root", tiny)
    assert r.code == 0 and "1 file has no picture" in r.out
    out = ClipOutputs(tmp_path / "root", "m4aclip0001")
    assert out.blind and not np.load(out.hard("visual")).any()
    assert np.load(out.scores("audio")).shape == (10, 25)


def test_unav_task_harvests_the_annotation_files_videos_whole(unav_video, tiny, cli, tmp_path):
    """--task unav: weak labels and T = ceil(duration) from the real annotation file; the real
    60 s video (its name begins with ``--``, its container says 60.06 s) gives 60 rows."""
    from avparse.data.unav import UnAVAnnotations
    from avparse.harvest.outputs import ClipOutputs

    annotations = unav_video.parent.parent / "unav100_annotations.json"
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(unav_video, videos)
    r = _harvest(cli, videos, annotations, tmp_path / "root", tiny, "--task", "unav")
    assert r.code == 1  # every other video of the file is missing (recorded, not harvested)
    assert "harvested 1 clip," in r.out and "60 one-second segments in 1 whole video\n" in r.out
    out = ClipOutputs(tmp_path / "root", UNAV_VIDEO)
    assert np.load(out.segments("audio")).shape == (60, 16)
    assert np.load(out.scores("visual")).shape == (60, 100)
    ann = UnAVAnnotations(annotations)
    row = ann.videos("train").index(UNAV_VIDEO)
    assert int(ann.lengths("train")[row]) == 60


# ---- parse -----------------------------------------------------------------------------------


def _low_thresholds(path: Path, classes: list[str]) -> Path:
    import json

    every = {c: -50.0 for c in classes}  # every class above threshold: events span the file
    path.write_text(json.dumps({"vocabulary": "custom", "visual": every, "audio": every}))
    return path


@pytest.mark.parametrize("suffix", sorted(AUDIO_CODECS))
def test_zero_shot_parse_of_audio_only_files(cli, tiny, tmp_path, suffix):
    import json

    audio = write_test_audio(tmp_path / f"song{suffix}", seconds=12)
    low = _low_thresholds(tmp_path / "low.json", ["dog", "car"])
    out = tmp_path / "out"
    pictures = ["--plot", "--html"] if suffix == ".m4a" else []  # the pictures' cost once
    r = cli("parse", audio, "--zero-shot", "--classes", "dog,car", "--thresholds", low,
            "--clip-model", tiny[0], "--clap-model", tiny[1], "--out", out, *pictures,
            "--no-progress")  # fmt: skip
    assert r.code == 0, r.err
    assert "no video stream: visual events are not reported" in r.err
    data = json.loads((out / "song.json").read_text())
    assert data["has_video"] is False and data["has_audio"] is True
    kinds = {e["modality"] for e in data["events"]}
    assert kinds == {"audio"}  # heard, never seen
    assert max(e["offset"] for e in data["events"]) == pytest.approx(data["duration"], abs=0.05)
    if pictures:
        assert (out / "song.png").is_file() and (out / "song.html").is_file()


def test_student_refuses_an_audio_only_file_in_one_line(tiny, tmp_path):
    from avparse.errors import AvparseError
    from avparse.parsing.api import video_duration

    audio = write_test_audio(tmp_path / "a.m4a", seconds=2)
    with pytest.raises(AvparseError, match="student reads both pictures and sound; parse it with"):
        video_duration(audio)
    assert video_duration(audio, audio_only=True) == pytest.approx(2.0, abs=0.05)


def test_zero_shot_parse_of_the_real_unav_video_named_with_dashes(
    unav_video, tiny, tmp_path, monkeypatch
):
    """A 60 s video whose name begins with ``--``, given after ``--`` in its own folder."""
    import json

    from avparse.cli.main import main

    shutil.copy(unav_video, tmp_path / unav_video.name)
    monkeypatch.chdir(tmp_path)
    low = _low_thresholds(tmp_path / "low.json", ["speech"])
    code = main(["parse", "--zero-shot", "--classes", "speech", "--thresholds", str(low),
                 "--clip-model", str(tiny[0]), "--clap-model", str(tiny[1]), "--out", "out",
                 "--no-progress", "--", unav_video.name])  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "out" / f"{UNAV_VIDEO}.json").read_text())
    assert data["duration"] == pytest.approx(media_duration(unav_video)) and data["windows"] == 6
    assert data["segments"][0] == [0.0, 1.0] and data["segments"][-1][1] == pytest.approx(60, 0.01)


@pytest.fixture(scope="module")
def segment_student(tmp_path_factory, tiny) -> Path:
    """A tiny student of UWAV's network on CLAP/CLIP segment embeddings (any length)."""
    import torch

    from avparse.model.checkpoint import save_student
    from avparse.model.config import ModelConfig
    from avparse.model.han import HAN

    torch.manual_seed(0)
    config = ModelConfig(
        audio_feature="clap_segments", visual_feature="clip_segments", motion_feature="none",
        arch="uwav", d_model=16, num_layers=1, nhead=2, dim_feedforward=32,
        feature_dims={"audio": 16, "visual": 16},
    )  # fmt: skip
    return save_student(HAN(config), config, tmp_path_factory.mktemp("student") / "any")


def _parse_student(cli, video: Path, student: Path, tiny, out: Path, *extra: str):
    return cli("parse", video, "--model", student, "--clip-model", tiny[0],
               "--clap-model", tiny[1], "--out", out, "--no-progress", *extra)  # fmt: skip


def test_any_length_student_reads_all_segments_in_one_pass(cli, segment_student, tiny, long_root):
    import json

    _, base, _ = long_root
    video = base / "videos" / "longvideo01.mp4"
    out = base / "parsed"
    r = _parse_student(cli, video, segment_student, tiny, out, "--plot", "--html")
    assert r.code == 0, r.err
    data = json.loads((out / "longvideo01.json").read_text())
    assert data["windows"] == 1 and len(data["segments"]) == 24
    assert data["segments"][:2] == [[0.0, 1.0], [1.0, 2.0]]
    assert data["segments"][-1] == [23.0, pytest.approx(23.5, abs=0.05)]
    assert (out / "longvideo01.png").is_file() and (out / "longvideo01.html").is_file()
    assert (out / "longvideo01.tsv").is_file()


def test_any_length_student_in_windows_beyond_max_segments(cli, segment_student, tiny, long_root):
    import json

    _, base, _ = long_root
    out = base / "parsed-windows"
    video = base / "videos" / "longvideo01.mp4"
    r = _parse_student(cli, video, segment_student, tiny, out, "--max-segments", "10")
    assert r.code == 0, r.err
    data = json.loads((out / "longvideo01.json").read_text())
    assert data["windows"] == 3 and len(data["segments"]) == 24
    assert data["segments"][10] == [10.0, 11.0]
    assert any("24 segments read in 3 windows of 10" in n for n in data["notes"])
    bad = _parse_student(cli, video, segment_student, tiny, out, "--max-segments", "0")
    assert bad.code == 2 and "--max-segments must be at least 1" in bad.err


def test_parse_features_are_the_whole_harvest_rows(segment_student, tiny, long_root):
    """The student's inputs at parse time are the rows `harvest --span full` wrote."""
    from avparse.harvest.outputs import ClipOutputs
    from avparse.parsing.api import Parser

    _, base, root = long_root
    parser = Parser(segment_student, clip_model=tiny[0], clap_model=tiny[1])
    seg = parser.extractor.segments(base / "videos" / "longvideo01.mp4")
    out = ClipOutputs(root, "longvideo01")
    np.testing.assert_allclose(seg.clip, np.load(out.segments("visual")), atol=1e-5)
    np.testing.assert_allclose(seg.clap, np.load(out.segments("audio")), atol=1e-5)


def test_audio_only_file_refused_by_the_any_length_student(cli, segment_student, tiny, tmp_path):
    audio = write_test_audio(tmp_path / "song.flac", seconds=3)
    r = _parse_student(cli, audio, segment_student, tiny, tmp_path / "o")
    assert r.code == 1
    assert "no video stream: the student reads both pictures and sound" in r.err
    assert len([ln for ln in r.err.splitlines() if "error" in ln]) == 1


def test_real_videos_with_the_any_length_student(cli, segment_student, tiny, unav_video, llp_video,
                                                 tmp_path):  # fmt: skip
    import json

    r = cli("parse", unav_video, llp_video, "--model", segment_student, "--clip-model", tiny[0],
            "--clap-model", tiny[1], "--out", tmp_path, "--no-progress")  # fmt: skip
    assert r.code == 0, r.err
    unav = json.loads((tmp_path / f"{UNAV_VIDEO}.json").read_text())
    assert len(unav["segments"]) == 60 and unav["segments"][-1] == [59.0, 60.0]
    llp = json.loads((tmp_path / "BjCEufrlXm4.json").read_text())
    assert len(llp["segments"]) == 10 and llp["windows"] == 1


def test_a_video_failing_in_a_later_window_fails_whole(tiny, cli, tmp_path, monkeypatch):
    """Nothing of a video is written when one of its windows fails; the others are harvested."""
    import avparse.harvest.whole as whole
    from avparse.harvest.outputs import ClipOutputs
    from avparse.media import VideoDecodeError

    videos = tmp_path / "v"
    write_test_video(videos / "brokenlong1.mp4", seconds=21, size=(32, 32), fps=8)
    write_test_video(videos / "finevideo01.mp4", seconds=12, size=(32, 32), fps=8)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename\tevent_labels\nbrokenlong1\tDog\nfinevideo01\tDog\n")
    real = whole.decode_clip

    def damaged(path, *, window, **kw):
        if "brokenlong1" in str(path) and window == 1:
            raise VideoDecodeError(f"{path}: cannot decode (Invalid data found)")
        return real(path, window=window, **kw)

    monkeypatch.setattr(whole, "decode_clip", damaged)
    r = _harvest(cli, videos, labels, tmp_path / "root", tiny, "--span", "full")
    assert r.code == 1 and "1 clip failed" in r.err
    broken, fine = (
        ClipOutputs(tmp_path / "root", "brokenlong1"),
        ClipOutputs(tmp_path / "root", "finevideo01"),
    )
    assert not any(
        p.exists() for m in ("visual", "audio") for p in (broken.segments(m), broken.scores(m))
    )
    assert np.load(fine.segments("visual")).shape == (12, 16)
    failures = (tmp_path / "root" / "harvest_failures.tsv").read_text()
    assert "brokenlong1\t" in failures and "Invalid data found" in failures


def test_zero_shot_and_student_report_the_files_duration(segment_student, tiny, tmp_path):
    """A 10.3 s file: the 10 s windows leave its 0.3 s tail unparsed, the student of any length
    reads 11 segments; both report the file's duration (0.2.0: zero-shot said 10.0)."""
    from avparse.parsing.api import Parser

    video = write_test_video(tmp_path / "tail.mp4", seconds=10.3, size=(32, 32), fps=8)
    d = media_duration(video)
    zero = Parser(classes=["speech"], clip_model=tiny[0], clap_model=tiny[1]).parse(video)
    student = Parser(segment_student, clip_model=tiny[0], clap_model=tiny[1]).parse(video)
    assert zero.segments[-1][1] == pytest.approx(10.0) and len(student.segments) == 11
    assert zero.duration == student.duration == pytest.approx(d) and d > 10.25
