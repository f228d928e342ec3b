"""``avparse harvest --r2plus1d`` -> ``avparse train --preset valor++`` -> ``avparse evaluate``.

Teachers: the tiny CLIP / CLAP of :func:`avparse.teachers.tiny.save_tiny_teachers` with the
student's input shapes (CLIP (10, 768), CLAP (64, 768)), and a randomly initialised full-width
R(2+1)D-18 run at 2 frames per second and 16 px (its features are still (10, 512)). The student
is the ``valor++`` preset made tiny with ``--set``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SOFT_HARVEST_FOLDERS  # noqa: E402
from avparse.media.synthetic import write_test_video  # noqa: E402

FAST = ["--snippet-fps", "2", "--snippet-size", "16"]
TINY_STUDENT = ["--set", "d_model=16", "--set", "nhead=2", "--set", "dim_feedforward=32"]
TINY_STUDENT += ["--set", "num_layers=1"]
MOTION = FEATURE_KINDS["r2plus1d_18"].folder
HEADER = "filename\tevent_labels\n"
DENSE_HEADER = "filename\tonset\toffset\tevent_labels\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.teachers.tiny import save_tiny_teachers

    root = tmp_path_factory.mktemp("student-teachers")
    clip_dir, clap_dir = save_tiny_teachers(root, student_shapes=True)
    small_clip, small_clap = save_tiny_teachers(root)
    weights = root / "r2plus1d_18-random.pth"
    torch.manual_seed(0)
    torch.save(R2Plus1D18().state_dict(), weights)
    return {
        "clip": clip_dir,
        "clap": clap_dir,
        "small_clip": small_clip,
        "small_clap": small_clap,
        "r2plus1d": weights,
    }


def _videos(folder: Path, real: Path | None) -> Path:
    """The real LLP clip (or a generated stand-in), a clip without audio, val/test clips, junk."""
    folder.mkdir(parents=True)
    if real is not None:
        shutil.copy(real, folder / "BjCEufrlXm4.mp4")
    else:
        write_test_video(folder / "BjCEufrlXm4.mp4", size=(48, 64), fps=8, tone_hz=220.0)
    write_test_video(folder / "silentclip1.mp4", size=(32, 32), fps=8, tone_hz=None)
    write_test_video(folder / "valclip0001.mp4", size=(32, 32), fps=8, tone_hz=440.0)
    write_test_video(folder / "testclip001.mp4", size=(32, 32), fps=8, tone_hz=660.0)
    (folder / "corruptclip.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    return folder


WEAK = {
    "train": ["BjCEufrlXm4_20_30\tSpeech,Dog", "silentclip1_0_10\tCar"],
    "val": ["valclip0001_0_10\tViolin_fiddle,Dog"],
    "test": ["testclip001_0_10\tCello"],
}
LABELS = HEADER + "\n".join([*WEAK["train"], *WEAK["val"], *WEAK["test"]])
LABELS += "\ncorruptclip_0_10\tCat\n"


def _write_splits(root: Path) -> None:
    """What training needs beside the harvest: weak split files and dense val/test labels."""
    for split, name in (("train", "AVVP_train.csv"), ("val", "AVVP_val_pd.csv")):
        (root / name).write_text(HEADER + "\n".join(WEAK[split]) + "\n")
    (root / "AVVP_test_pd.csv").write_text(HEADER + "\n".join(WEAK["test"]) + "\n")
    (root / "AVVP_eval_audio.csv").write_text(
        DENSE_HEADER + "valclip0001_0_10\t0\t10\tViolin_fiddle\ntestclip001_0_10\t2\t8\tCello\n"
    )
    (root / "AVVP_eval_visual.csv").write_text(
        DENSE_HEADER + "valclip0001_0_10\t3\t7\tDog\ntestclip001_0_10\t0\t5\tCello\n"
    )


def _harvest(cli, videos: Path, labels: Path, out: Path, models: dict[str, Path], *extra: str):
    return cli(
        "harvest", "--videos", videos, "--labels", labels, "--out", out,
        "--clip-model", models["clip"], "--clap-model", models["clap"],
        "--r2plus1d", models["r2plus1d"], *FAST, "--batch-size", "2", "--no-progress", *extra,
    )  # fmt: skip


def _end_to_end(cli, tmp_path: Path, models: dict[str, Path], real: Path | None) -> None:
    videos = _videos(tmp_path / "videos", real)
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    root = tmp_path / "root"

    first = _harvest(cli, videos, labels, root, models)
    assert first.code == 1, first.err
    assert "harvested 4 clips, R(2+1)D-18 features for 4" in first.out
    failures = (root / "harvest_failures.tsv").read_text().splitlines()
    assert len(failures) == 2 and failures[1].startswith("corruptclip\t")
    assert "corruptclip.mp4" in failures[1]
    good = ("BjCEufrlXm4", "silentclip1", "valclip0001", "testclip001")
    for clip in good:
        for kind in ("clip", "clap", "r2plus1d_18"):
            arr = np.load(root / FEATURE_KINDS[kind].folder / f"{clip}.npy")
            assert arr.shape == FEATURE_KINDS[kind].shape and arr.dtype == np.float32
            assert np.isfinite(arr).all()
    assert not (root / MOTION / "corruptclip.npy").exists()
    # the clip without audio: silence features, zero audio labels, marker and record kept
    assert (root / "CLAP/no_audio/silentclip1.txt").is_file()
    assert "silentclip1\t" in (root / "harvest_no_audio.tsv").read_text()
    for folder in (HARVEST_FOLDERS["audio"], SOFT_HARVEST_FOLDERS["audio"]):
        assert not np.load(root / folder / "silentclip1.npy").any()
    manifest = json.loads((root / "harvest.json").read_text())
    assert manifest["motion"]["snippet_size"] == 16

    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.npy")}
    second = _harvest(cli, videos, labels, root, models)
    assert second.code == 1
    assert "harvested 0 clips, R(2+1)D-18 features for 0" in second.out
    assert "skipped 4 finished" in second.out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.npy")} == stamps

    _write_splits(root)
    check = cli("data", "check", root)
    assert check.code == 0, check.out + check.err
    store = tmp_path / "packed"
    assert cli("data", "pack", root, "--out", store, "--no-progress").code == 0

    run = tmp_path / "run"
    trained = cli(
        "train", "--data", root, "--preset", "valor++", "--epochs", "1", "--batch-size", "2",
        "--out", run, "--store", store, "--no-progress", *TINY_STUDENT,
    )  # fmt: skip
    assert trained.code == 0, trained.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["audio_feature"] == "clap" and config["visual_feature"] == "clip"
    assert (config["audio_dim"], config["visual_dim"], config["d_model"]) == (768, 768, 16)
    evaluated = cli(
        "evaluate", "--data", root, "--checkpoint", run / "model", "--split", "test",
        "--out", tmp_path / "eval", "--store", store,
    )  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    names = {f"{level}_{k}" for level in ("seg", "evt") for k in ("a", "v", "av", "type", "event")}
    assert set(metrics) >= names and all(0 <= metrics[k] <= 100 for k in names)
    assert (tmp_path / "eval" / "probs.npz").is_file()


@pytest.mark.slow
def test_real_clip_harvest_trains_valor_plus_plus(cli, tmp_path, models, llp_video) -> None:
    _end_to_end(cli, tmp_path, models, llp_video)


@pytest.mark.slow
def test_generated_clip_harvest_trains_valor_plus_plus(cli, tmp_path, models) -> None:
    _end_to_end(cli, tmp_path, models, None)


def test_r2plus1d_added_to_a_finished_harvest_without_teacher_pass(
    cli, tmp_path, models, monkeypatch
) -> None:
    videos = tmp_path / "videos"
    write_test_video(videos / "toneclip001.mp4", size=(32, 32), fps=8)
    write_test_video(videos / "silentclip1.mp4", size=(32, 32), fps=8, tone_hz=None)
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "toneclip001_0_10\tCello\nsilentclip1_0_10\tCar\n")
    root = tmp_path / "root"
    base = ["harvest", "--videos", videos, "--labels", labels, "--out", root, "--no-progress"]
    base += ["--clip-model", models["small_clip"], "--clap-model", models["small_clap"]]
    assert cli(*base).code == 0
    assert not (root / MOTION).exists()
    teacher_files = {p: p.stat().st_mtime_ns for p in root.rglob("*.npy")}

    def no_teacher(*args, **kwargs):
        raise AssertionError("a teacher was loaded although only R(2+1)D features were missing")

    monkeypatch.setattr("avparse.teachers.clip.VisualTeacher.__init__", no_teacher)
    monkeypatch.setattr("avparse.teachers.clap.AudioTeacher.__init__", no_teacher)
    added = cli(*base, "--r2plus1d", models["r2plus1d"], *FAST)
    assert added.code == 0, added.err
    assert "harvested 0 clips, R(2+1)D-18 features for 2" in added.out
    assert {p: p.stat().st_mtime_ns for p in teacher_files} == teacher_files
    first = np.load(root / MOTION / "toneclip001.npy")
    assert first.shape == (10, 512)

    # the same features as `avparse parse`'s extractor computes for the clip (shared sampling)
    from avparse.features.extract import motion_features
    from avparse.features.r2plus1d import load_r2plus1d18
    from avparse.media import decode_clip

    frames = decode_clip(videos / "toneclip001.mp4", fps=2, fps_size=(16, 16)).rate_frames
    net = load_r2plus1d18(models["r2plus1d"])
    assert np.allclose(motion_features(net, [frames], size=16)[0], first, atol=1e-4)

    # a run without --r2plus1d keeps the recorded settings; other settings are refused...
    assert cli(*base).code == 0
    assert json.loads((root / "harvest.json").read_text())["motion"]["snippet_size"] == 16
    other = [*base, "--r2plus1d", models["r2plus1d"], "--snippet-fps", "2", "--snippet-size", "24"]
    refused = cli(*other)
    assert refused.code == 2 and "snippet_size" in refused.err
    # ...unless --overwrite, which recomputes the R(2+1)D features only
    redone = cli(*other, "--overwrite")
    assert redone.code == 0 and "R(2+1)D-18 features for 2" in redone.out
    assert not np.allclose(np.load(root / MOTION / "toneclip001.npy"), first)


def test_missing_r2plus1d_weights_is_one_line(cli, tmp_path, models) -> None:
    videos = tmp_path / "videos"
    write_test_video(videos / "toneclip001.mp4", seconds=2, size=(32, 32), fps=8)
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "toneclip001_0_2\tCello\n")
    result = cli(
        "harvest", "--videos", videos, "--labels", labels, "--out", tmp_path / "root",
        "--clip-model", models["clip"], "--clap-model", models["clap"],
        "--r2plus1d", tmp_path / "nope.pth", "--no-progress",
    )  # fmt: skip
    assert result.code == 2 and "nope.pth: R(2+1)D-18 weights file not found" in result.err
