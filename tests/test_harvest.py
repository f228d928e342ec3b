"""``avparse harvest`` end to end with tiny offline teachers: layout, failures, resume, reproducibility."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")

from avparse.data.layout import HARVEST_FOLDERS, SCORE_FOLDERS, SOFT_HARVEST_FOLDERS
from avparse.harvest.plan import plan
from avparse.media.synthetic import write_test_video
from avparse.vocab import LLP

GOOD = ("BjCEufrlXm4", "toneclip001")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from avparse.teachers.tiny import save_tiny_teachers

    return save_tiny_teachers(tmp_path_factory.getbasetemp() / "avparse-tiny-teachers")


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, request) -> Path:
    """Videos (real clip, tone clip, silent clip, corrupt file) and weak labels.

    Without ``../shared`` (CI) a synthetic clip stands in for the real LLP clip.
    """
    root = tmp_path_factory.mktemp("harvest-data")
    videos = root / "videos"
    videos.mkdir()
    try:
        shutil.copy(request.getfixturevalue("llp_video"), videos / "BjCEufrlXm4.mp4")
    except pytest.skip.Exception:
        write_test_video(videos / "BjCEufrlXm4.mp4", size=(120, 160), tone_hz=220.0)
    write_test_video(videos / "toneclip001.mp4", seconds=10)
    write_test_video(videos / "silentclip1.mkv", seconds=10, tone_hz=None)
    (videos / "corruptclip.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    (root / "labels.csv").write_text(
        "filename\tevent_labels\n"
        "BjCEufrlXm4_20_30\tSpeech,Dog\n"
        "toneclip001_0_10\tCello,Speech\n"
        "silentclip1_5_15\tCar\n"
        "corruptclip_0_10\tCat\n"
    )
    return root


def harvest(cli, dataset: Path, tiny, out: Path, *extra: str):
    return cli(
        "harvest",
        "--videos", dataset / "videos",
        "--labels", dataset / "labels.csv",
        "--out", out,
        "--clip-model", tiny[0],
        "--clap-model", tiny[1],
        "--batch-size", "2",
        "--no-progress",
        *extra,
    )  # fmt: skip


@pytest.fixture(scope="session")
def first_run(tmp_path_factory, dataset, tiny):
    from avparse.cli.main import main

    out = tmp_path_factory.mktemp("harvest-out") / "root"
    args = ["harvest", "--videos", dataset / "videos", "--labels", dataset / "labels.csv"]
    args += ["--out", out, "--clip-model", tiny[0], "--clap-model", tiny[1]]
    code = main([str(a) for a in [*args, "--batch-size", "2", "--no-progress"]])
    return code, out


def test_published_layout_and_failures(first_run):
    code, out = first_run
    assert code == 1
    for clip in GOOD:
        assert np.load(out / "CLIP/features" / f"{clip}.npy").shape == (10, 16)
        clap = np.load(out / "CLAP/features" / f"{clip}.npy")
        assert clap.ndim == 2 and clap.shape[1] == 32
        for m in ("visual", "audio"):
            for folder in (HARVEST_FOLDERS[m], SOFT_HARVEST_FOLDERS[m], SCORE_FOLDERS[m]):
                arr = np.load(out / folder / f"{clip}.npy")
                assert arr.shape == (10, len(LLP)) and arr.dtype == np.float32
            hard = np.load(out / HARVEST_FOLDERS[m] / f"{clip}.npy")
            assert set(np.unique(hard)) <= {0.0, 1.0}
    # labels stay inside the weak labels (Speech, Dog for the real clip)
    soft = np.load(out / SOFT_HARVEST_FOLDERS["audio"] / "BjCEufrlXm4.npy")
    inside = [LLP.index("Speech"), LLP.index("Dog")]
    assert soft[:, [c for c in range(len(LLP)) if c not in inside]].max() == 0
    assert soft[:, inside].min() > 0
    failures = (out / "harvest_failures.tsv").read_text().splitlines()
    assert failures[0] == "clip\tfile\treason" and len(failures) == 2
    assert failures[1].startswith("corruptclip\t") and "corruptclip.mp4" in failures[1]
    # the silent clip is harvested as silence: CLAP files of zeros, all-zero audio labels
    assert (out / HARVEST_FOLDERS["visual"] / "silentclip1.npy").is_file()
    heard = np.load(out / "CLAP/features" / "BjCEufrlXm4.npy")
    silent = np.load(out / "CLAP/features" / "silentclip1.npy")
    assert silent.shape == heard.shape and np.isfinite(silent).all()
    assert np.load(out / SCORE_FOLDERS["audio"] / "silentclip1.npy").shape == (10, len(LLP))
    for folder in (HARVEST_FOLDERS["audio"], SOFT_HARVEST_FOLDERS["audio"]):
        assert not np.load(out / folder / "silentclip1.npy").any()
    assert (out / "CLAP/no_audio/silentclip1.txt").is_file()
    assert "silentclip1\t" in (out / "harvest_no_audio.tsv").read_text()
    assert json.loads((out / "harvest.json").read_text())["teacher"] == "modality"
    assert not list(out.rglob(".*.tmp*"))


def test_second_run_does_no_repeated_work(first_run, cli, dataset, tiny, monkeypatch):
    _, out = first_run
    files = sorted(p for p in out.rglob("*.npy"))
    before = {p: p.stat().st_mtime_ns for p in files}

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded although only a broken clip was left")

    # only the corrupt clip is retried: it fails to decode, so no model may be loaded
    monkeypatch.setattr("avparse.teachers.clip.VisualTeacher.__init__", no_model)
    monkeypatch.setattr("avparse.teachers.clap.AudioTeacher.__init__", no_model)
    result = harvest(cli, dataset, tiny, out)
    assert result.code == 1
    assert "harvested 0 clips" in result.out and "skipped 3 finished" in result.out
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_two_runs_give_identical_harvests(first_run, cli, dataset, tiny, tmp_path):
    _, out = first_run
    again = tmp_path / "again"
    assert harvest(cli, dataset, tiny, again, "--batch-size", "3").code == 1
    names = sorted(p.relative_to(out) for p in out.rglob("*.npy"))
    assert names == sorted(p.relative_to(again) for p in again.rglob("*.npy"))
    for name in names:
        a, b = np.load(out / name), np.load(again / name)
        if "pseudo_labels" in str(name):
            assert np.array_equal(a, b), name
        else:
            assert np.allclose(a, b, atol=1e-5), name


def test_new_thresholds_relabel_from_saved_logits(first_run, cli, dataset, tiny, tmp_path):
    _, first = first_run
    out = tmp_path / "root"
    shutil.copytree(first, out)
    model_files = sorted((out / SCORE_FOLDERS["visual"]).glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in model_files]
    speech = float(np.load(out / SCORE_FOLDERS["visual"] / "BjCEufrlXm4.npy")[:, 0].min()) - 1
    table = {"vocabulary": "llp", "visual": {"Speech": speech}}
    (tmp_path / "t.json").write_text(json.dumps(table))
    refused = harvest(cli, dataset, tiny, out, "--thresholds", tmp_path / "t.json")
    assert refused.code == 2 and "other settings (thresholds)" in refused.err
    result = harvest(cli, dataset, tiny, out, "--thresholds", tmp_path / "t.json", "--overwrite")
    assert "relabelled 3" in result.out and "harvested 0 clips" in result.out
    assert [p.stat().st_mtime_ns for p in model_files] == stamps
    hard = np.load(out / HARVEST_FOLDERS["visual"] / "BjCEufrlXm4.npy")
    assert hard[:, 0].all()  # every segment's Speech logit is now above the threshold


def test_fused_teacher_gives_both_modalities_one_label(cli, dataset, tiny, tmp_path):
    out = tmp_path / "fused"
    harvest(cli, dataset, tiny, out, "--teacher", "fused")
    for clip in GOOD:
        a = np.load(out / HARVEST_FOLDERS["audio"] / f"{clip}.npy")
        v = np.load(out / HARVEST_FOLDERS["visual"] / f"{clip}.npy")
        assert np.array_equal(a, v)


def test_missing_model_is_one_line(cli, dataset, tmp_path):
    result = cli(
        "harvest", "--videos", dataset / "videos", "--labels", dataset / "labels.csv",
        "--out", tmp_path / "x", "--clip-model", tmp_path / "no-model", "--no-progress",
    )  # fmt: skip
    assert result.code == 2 and "model folder not found" in result.err


def test_ranks_share_clips_without_overlap(dataset):
    from avparse.harvest.plan import index_videos, read_labels, shard

    filenames, ids, weak = read_labels(dataset / "labels.csv", "llp", LLP)
    jobs, failures = plan(filenames, ids, weak, index_videos(dataset / "videos"))
    assert [j.clip for j in jobs] == sorted(ids) and not failures
    parts = [[j.clip for j in shard(jobs, r, 3)] for r in range(3)]
    assert sorted(c for part in parts for c in part) == sorted(ids)
    assert all(len(set(a) & set(b)) == 0 for a in parts for b in parts if a is not b)
    silent = next(j for j in jobs if j.clip == "silentclip1")
    assert silent.video is not None and silent.video.suffix == ".mkv"


def test_report_scores_harvest_against_dense_labels(first_run, cli, dataset, tiny, tmp_path):
    _, out = first_run
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "AVVP_val_pd.csv").write_text(
        "filename\tevent_labels\nBjCEufrlXm4_20_30\tSpeech,Dog\ntoneclip001_0_10\tCello\n"
        "notharvest1_0_10\tCar\n"
    )
    (ann / "AVVP_eval_audio.csv").write_text(
        "filename\tonset\toffset\tevent_labels\nBjCEufrlXm4_20_30\t0\t10\tSpeech\n"
    )
    (ann / "AVVP_eval_visual.csv").write_text(
        "filename\tonset\toffset\tevent_labels\ntoneclip001_0_10\t2\t5\tCello\n"
    )
    from avparse.harvest.report import score_harvest

    score = score_harvest(out, ann, "val")
    assert score.scored == 2 and score.missing == 1
    assert set(score.scores) >= {"seg_a", "seg_v", "seg_type", "evt_event"}
    assert all(0 <= v <= 100 for v in score.scores.values())
    result = harvest(cli, dataset, tiny, out, "--report", "--annotations", ann, "--split", "val")
    assert result.code == 1 and "(2 clips, 1 missing)" in result.out
    saved = json.loads((out / "harvest_report_val.json").read_text())
    assert saved["seg_type"] == pytest.approx(score.scores["seg_type"])


def test_ave_without_thresholds_writes_logits_then_relabels(cli, dataset, tiny, tmp_path):
    from avparse.vocab import AVE

    ann = tmp_path / "Annotations.txt"
    ann.write_text(
        "Category&VideoID&Quality&StartTime&EndTime\n"
        "Church bell&toneclip001&good&2&8\nBark&silentclip1&good&0&10\nBanjo&toneclip001&good&0&3\n"
    )
    out = tmp_path / "ave"
    args = ["--videos", dataset / "videos", "--labels", ann, "--task", "ave", "--out", out]
    args += ["--clip-model", tiny[0], "--clap-model", tiny[1], "--no-progress"]
    first = cli("harvest", *args)
    assert first.code == 0 and "wrote features and logits only" in first.out
    assert (out / SCORE_FOLDERS["audio"] / "toneclip001.npy").is_file()
    assert not (out / HARVEST_FOLDERS["audio"]).exists()
    table = {m: dict.fromkeys(AVE.names, -1e3) for m in ("visual", "audio")}
    (tmp_path / "t.json").write_text(json.dumps({"vocabulary": "ave", **table}))
    second = cli("harvest", *args, "--thresholds", tmp_path / "t.json")
    assert second.code == 0 and "relabelled 2" in second.out
    hard = np.load(out / HARVEST_FOLDERS["audio"] / "toneclip001.npy")
    assert hard.shape == (10, len(AVE))
    # every logit is above -1000, so exactly the weak labels (both rows of the id) are on
    on = sorted(np.flatnonzero(hard.all(0)).tolist())
    assert on == sorted([AVE.index("Church bell"), AVE.index("Banjo")])
    # ...except for the silent clip, which hears nothing whatever its silence logits say
    assert not np.load(out / HARVEST_FOLDERS["audio"] / "silentclip1.npy").any()
    assert np.load(out / HARVEST_FOLDERS["visual"] / "silentclip1.npy")[:, AVE.index("Bark")].all()


def test_calibration_leaves_silent_clips_out_of_audio_thresholds(tmp_path):
    from avparse.harvest.calibration import calibrate_harvest

    ann, root = tmp_path / "ann", tmp_path / "root"
    ann.mkdir()
    ids = ["heardclip01", "heardclip02", "silentclip1"]
    (ann / "AVVP_val_pd.csv").write_text(
        "filename\tevent_labels\n" + "".join(f"{c}_0_10\tSpeech\n" for c in ids)
    )
    head = "filename\tonset\toffset\tevent_labels\n"
    (ann / "AVVP_eval_audio.csv").write_text(f"{head}heardclip01_0_10\t0\t5\tSpeech\n")
    (ann / "AVVP_eval_visual.csv").write_text(f"{head}heardclip02_0_10\t0\t5\tSpeech\n")
    for clip in ids:
        for m in ("visual", "audio"):
            scores = np.zeros((10, len(LLP)), np.float32)
            scores[:5, 0] = {"heardclip01": 10.0, "heardclip02": 2.0, "silentclip1": 6.0}[clip]
            (root / SCORE_FOLDERS[m]).mkdir(parents=True, exist_ok=True)
            np.save(root / SCORE_FOLDERS[m] / f"{clip}.npy", scores)
    # one clip per class: min_clips=1 so Speech gets a threshold of its own
    with_silent = calibrate_harvest(root, ann, min_clips=1).classes["audio"][0]
    (root / "CLAP/no_audio").mkdir(parents=True)
    (root / "CLAP/no_audio/silentclip1.txt").write_text("silentclip1.mp4\tno audio stream\n")
    without = calibrate_harvest(root, ann, min_clips=1).classes["audio"][0]
    # true Speech logits 10, false ones 2: the best threshold is their midpoint, unless the
    # silence logits (6) of a clip the harvest labels 0 anyway are counted
    assert with_silent.threshold == pytest.approx(8.0)
    assert without.threshold == pytest.approx(6.0)


def test_two_files_for_one_clip_are_refused(cli, tiny, tmp_path):
    """``abc.mp4`` and ``abc.mkv`` (or a ``.wav`` in another folder): one line naming both,
    nothing written (was: the first by path, silently)."""
    from avparse.errors import AvparseError
    from avparse.harvest.plan import index_videos

    videos = tmp_path / "videos"
    (videos / "audio").mkdir(parents=True)
    for name in ("abcdefghijk.mp4", "abcdefghijk.mkv", "other.mp4"):
        (videos / name).write_bytes(b"x")
    with pytest.raises(AvparseError, match=r"abcdefghijk\.mkv and .*abcdefghijk\.mp4: two files"):
        index_videos(videos)
    (videos / "abcdefghijk.mkv").unlink()
    (videos / "audio" / "abcdefghijk.wav").write_bytes(b"x")
    labels = tmp_path / "labels.csv"
    labels.write_text("filename\tevent_labels\nabcdefghijk_0_10\tDog\n")
    res = cli("harvest", "--videos", videos, "--labels", labels, "--out", tmp_path / "root",
              "--clip-model", tiny[0], "--clap-model", tiny[1], "--no-progress")  # fmt: skip
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert "audio/abcdefghijk.wav" in res.err and "abcdefghijk.mp4" in res.err
    assert "two files for clip 'abcdefghijk' under --videos" in res.err
    assert not (tmp_path / "root" / "harvest.json").exists()
