"""The synthetic UnAV-like world: statistics, name-based prototypes, a root end to end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, SCORE_FOLDERS, UNAV_FEATURE_RATE
from avparse.data.unav import UnAVAnnotations
from avparse.errors import AvparseError
from avparse.synthetic import COMPLETE_MARKER
from avparse.synthetic.concepts import concept_parts, normalise, prototypes, text_embeddings
from avparse.synthetic.config import SyntheticConfig
from avparse.synthetic.config import rng as rng_of
from avparse.synthetic.unav import (
    UNAV_FEATURE_SETS,
    generate_unav,
    load_unav_stats,
    published_rows,
    render_splits,
    sample_unav_events,
    unav_splits,
)
from avparse.vocab import AVE, LLP, UNAV


def test_stats_file_is_the_real_files(unav_root: Path):
    from importlib import util

    spec = util.spec_from_file_location(
        "derive", Path(__file__).resolve().parents[1] / "scripts" / "derive_unav_stats.py"
    )
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.unav_stats(unav_root) == load_unav_stats()


def test_sampled_videos_follow_the_statistics():
    stats = load_unav_stats()
    ev = sample_unav_events(3000, rng_of(0, 1))
    n = len(ev.durations)
    lengths = ev.lengths
    assert lengths.min() >= 10 and lengths.max() <= 60
    assert abs(ev.durations.mean() - stats["summary"]["mean_duration"]) < 1.0
    assert abs(len(ev.label) / n - stats["summary"]["events_per_video"]) < 0.15
    seconds = ev.end - ev.start
    assert abs(np.median(seconds) - stats["summary"]["median_event_seconds"]) < 1.5
    assert (ev.start >= 0).all() and (ev.end <= ev.durations[ev.video]).all()
    assert (ev.end >= ev.start).all()
    k = ev.weak(len(UNAV)).sum(1)
    real_k = np.asarray(stats["classes_per_video"]["counts"], float)
    assert abs(k.mean() - (np.arange(len(real_k)) * real_k).sum() / real_k.sum()) < 0.1
    # events of one class in one video never overlap
    for v, c in {(int(a), int(b)) for a, b in zip(ev.video[:400], ev.label[:400], strict=True)}:
        sel = (ev.video == v) & (ev.label == c)
        order = np.argsort(ev.start[sel])
        assert (ev.start[sel][order][1:] >= ev.end[sel][order][:-1] - 1e-9).all()


def test_prototypes_are_a_function_of_the_name():
    assert normalise("Frying_(food)") == "frying food" and normalise("Violin, fiddle") == (
        "violin fiddle"
    )
    llp = prototypes(LLP.names, "clip", 768)
    unav = prototypes(UNAV.names, "clip", 768)
    ave = prototypes(AVE.names, "clip", 768)
    lo, un, av = LLP.index, UNAV.index, AVE.index
    cos = lambda a, b: float(a @ b)  # noqa: E731  (unit rows)
    assert cos(llp[lo("Cello")], unav[un("playing cello")]) == pytest.approx(1.0)
    assert cos(llp[lo("Violin_fiddle")], ave[av("Violin, fiddle")]) == pytest.approx(1.0)
    assert cos(llp[lo("Dog")], unav[un("dog barking")]) == pytest.approx(
        1 / math.sqrt(1.16), abs=0.05
    )
    assert cos(llp[lo("Speech")], ave[av("Male speech, man speaking")]) == pytest.approx(1.0)
    assert 0.8 < cos(unav[un("man speaking")], unav[un("woman speaking")]) < 0.9
    assert abs(cos(llp[lo("Blender")], unav[un("hair dryer drying")])) < 0.2  # unrelated
    # independent of the vocabulary a name sits in, of its position, and of data seeds
    again = prototypes(["dog barking", "Cello"], "clip", 768)
    np.testing.assert_allclose(again[0], unav[un("dog barking")])
    np.testing.assert_allclose(again[1], llp[lo("Cello")])
    assert concept_parts("Car") == (("car", 1.0),)
    text = text_embeddings(UNAV.names, "audio")
    assert text.shape == (100, 512) and text.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    own = (text * prototypes(UNAV.names, "clap", 512)).sum(1)
    assert (own > 0.85).all()  # a text embedding sits near its class, with a zero-shot error


def test_render_and_teachers_in_memory():
    splits = unav_splits({"train": 0, "val": 40, "test": 30}, seed=2)
    kept: dict[str, dict[str, list[np.ndarray]]] = {}

    def sink(name, ids, feats):
        for k, arrays in feats.items():
            kept.setdefault(name, {}).setdefault(k, []).extend(arrays)

    cal = render_splits(splits, UNAV_FEATURE_SETS["all"], 2, SyntheticConfig(), sink)
    test = splits["test"]
    lengths = test.dense.lengths
    for kind in UNAV_FEATURE_SETS["all"]:
        arrays = kept["test"][kind]
        assert len(arrays) == 30
        for x, t, d in zip(arrays, lengths, test.events.durations, strict=True):
            fk = FEATURE_KINDS[kind]
            rows = published_rows(d) if fk.rate else t
            assert x.shape == (rows, fk.dim) and x.dtype == np.float32
            if fk.rate:
                assert abs(rows / UNAV_FEATURE_RATE - d) < 2
    hard, _ = test.labels["audio"]
    assert (hard.lengths == lengths).all()
    seg_video = np.repeat(np.arange(30), lengths)
    assert not (hard.values.astype(bool) & ~test.weak[seg_video]).any()  # inside the weak labels
    truth = test.dense.values
    for m in ("audio", "visual"):
        pred = test.labels[m][0].values.astype(bool)
        f = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
        assert 0.6 < f < 0.98, (m, f)  # informative, not perfect
    assert set(cal.thresholds) == {"audio", "visual"}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "unav"
    return generate_unav(root, n_train=14, n_val=12, n_test=8, seed=5)


def test_root_reads_back_and_checks_clean(synth_root: Path, cli):
    ann = UnAVAnnotations(synth_root)
    assert ann.counts() == {"train": 14, "val": 12, "test": 8}
    assert json.loads((synth_root / "unav100_annotations.json").read_text())["version"]
    again = unav_splits({"train": 14, "val": 12, "test": 8}, seed=5)
    for split in ("train", "val", "test"):
        assert ann.videos(split) == list(again[split].events.videos)
        np.testing.assert_array_equal(ann.dense(split).values, again[split].dense.values)
        np.testing.assert_array_equal(ann.lengths(split), again[split].dense.lengths)
    vid = ann.videos("train")[0]
    t = int(ann.lengths("train")[0])
    assert np.load(synth_root / HARVEST_FOLDERS["visual"] / f"{vid}.npy").shape == (t, 100)
    assert np.load(synth_root / SCORE_FOLDERS["audio"] / f"{vid}.npy").shape == (t, 100)
    res = cli("data", "check", synth_root, "--no-progress")
    assert res.code == 0 and "OK: no problems found" in res.out, res.out
    assert "(task unav)" in res.out
    # the class text embeddings the frame-wise teachers score against, in UWAV's files, are
    # what the temporal teacher reads with clip_text=uwav / clap_text=uwav (no text model)
    from avparse.temporal.text import event_features

    text = event_features(synth_root, {"audio": "uwav", "visual": "uwav"}, UNAV)
    noise = math.hypot(0.3, 0.35)
    for m, dim in (("audio", 512), ("visual", 768)):
        assert text[m].shape == (100, dim)
        np.testing.assert_allclose(text[m], text_embeddings(UNAV.names, m, noise=noise))


def test_broken_copy_of_a_synthetic_root(synth_root: Path, tmp_path: Path, cli):
    root = Path(shutil.copytree(synth_root, tmp_path / "broken"))
    ann = UnAVAnnotations(root)
    vid = ann.videos("val")[0]
    (root / FEATURE_KINDS["unav_vggish"].folder / f"{vid}_vggish.npy").unlink()
    clip = root / FEATURE_KINDS["clip_segments"].folder / f"{vid}.npy"
    np.save(clip, np.load(clip)[:-1])
    res = cli("data", "check", root, "--no-progress")
    assert res.code == 1 and "2 problems:" in res.out
    assert f"feats/audio_features_vggish/{vid}_vggish.npy: missing (val)" in res.out
    assert f"feats_CLIP/segment_feats/{vid}.npy: shape" in res.out


def test_data_synth_unav_end_to_end(tmp_path: Path, cli):
    out = tmp_path / "u"
    args = ["data", "synth", out, "--task", "unav", "--clips", "10", "--val-clips", "8",
            "--test-clips", "6", "--seed", "1", "--features", "published"]  # fmt: skip
    res = cli(*args)
    assert res.code == 0 and "10 train / 8 val / 6 test" in res.out and "--task unav" in res.out
    assert (out / COMPLETE_MARKER).is_file()
    assert not (out / "feats_CLIP").exists() and (out / "feats" / "audio_features_vggish").is_dir()
    assert "reused" in cli(*args).out
    res = cli(*args[:-2], "--features", "segments")
    assert res.code == 2 and "other settings" in res.err
    res = cli("data", "synth", tmp_path / "x", "--task", "unav", "--features", "valor")
    assert res.code == 2 and "--task llp" in res.err
    assert cli("data", "check", out, "--no-progress").code == 0
    run = tmp_path / "run"
    tiny = ["--preset", "tiny", "--set", "audio_feature=unav_vggish", "--set",
            "visual_feature=unav_i3d_rgb", "--set", "motion_feature=unav_i3d_flow"]  # fmt: skip
    res = cli("train", "--data", out, "--task", "unav", *tiny, "--loss", "valor", "--epochs", "1",
              "--out", run, "--no-progress")  # fmt: skip
    assert res.code == 0, res.err  # (evaluate of a unav run: tests/test_task_unav.py)
    assert (run / "model").is_dir()


def test_bad_settings_are_one_line(tmp_path: Path):
    with pytest.raises(AvparseError, match="unknown UnAV-like feature set"):
        generate_unav(tmp_path / "a", features="valor")
    with pytest.raises(AvparseError, match="must be >= 0"):
        generate_unav(tmp_path / "a", n_train=-1)
    with pytest.raises(AvparseError, match="to calibrate"):
        generate_unav(tmp_path / "a", n_train=0, n_val=0, n_test=3)


def test_llp_like_world_with_the_name_based_teachers(tmp_path: Path, cli):
    from avparse.synthetic import generate_arrays

    splits = generate_arrays(n_train=0, n_val=60, n_test=40, features=None, segments=True)
    test = splits["test"]
    assert test.features["clip_segments"].shape == (40, 10, 768)
    assert test.features["clap_segments"].shape == (40, 10, 512)
    # the frame-wise logits are the segment embeddings against the shared text embeddings
    text = text_embeddings(LLP.names, "visual", noise=math.hypot(0.3, 0.35))
    np.testing.assert_allclose(
        test.scores["visual"], 100.0 * test.features["clip_segments"] @ text.T, atol=1e-3
    )
    for m in ("audio", "visual"):
        pred = test.labels["modality"][m][0].astype(bool)
        truth = getattr(test, m)
        f = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
        assert 0.5 < f < 0.98, (m, f)
    # one concept, one direction: an LLP Cello segment points at UnAV's "playing cello" text
    unav_text = text_embeddings(UNAV.names, "visual", noise=math.hypot(0.3, 0.35))
    both = np.concatenate([splits["val"].visual, test.visual])
    emb = np.concatenate([splits["val"].features["clip_segments"], test.features["clip_segments"]])
    pairs = {"Cello": "playing cello", "Dog": "dog barking", "Car": "car passing by",
             "Helicopter": "helicopter", "Clapping": "people clapping", "Banjo": "playing banjo",
             "Accordion": "playing accordion", "Motorcycle": "driving motorcycle"}  # fmt: skip
    hits = []
    for llp_name, unav_name in pairs.items():
        alone = both[..., LLP.index(llp_name)] & (both.sum(-1) == 1)  # the only visible class
        if alone.sum() >= 5:
            best = (emb[alone] @ unav_text.T).argmax(1)
            related = {unav_name, "dog howling"} if llp_name == "Dog" else {unav_name}
            hits.append(np.isin(best, [UNAV.index(n) for n in related]).mean())
    assert len(hits) >= 3 and np.mean(hits) > 0.5, hits
    root = tmp_path / "llp"
    res = cli("data", "synth", root, "--clips", "12", "--val-clips", "12", "--test-clips", "6",
              "--segments")  # fmt: skip
    assert res.code == 0, res.err
    x = np.load(next((root / FEATURE_KINDS["clap_segments"].folder).glob("*.npy")))
    assert x.shape == (10, 512)
    event = np.load(root / "feats_CLIP" / "event_feats" / "all_event_feats.npy")
    np.testing.assert_allclose(event, text)  # LLP's names in the same text tower
    res = cli("data", "check", root, "--no-progress")
    assert res.code == 0 and "feats_CLAP/segment_feats" in res.out, res.out
    np.save(next((root / FEATURE_KINDS["clip_segments"].folder).glob("*.npy")), np.zeros((9, 768)))
    res = cli("data", "check", root, "--no-progress")
    assert res.code == 1 and "shape (9, 768), expected (10, 768)" in res.out
    res = cli("data", "synth", tmp_path / "u", "--task", "unav", "--segments")
    assert res.code == 2 and "--segments is for --task llp" in res.err
