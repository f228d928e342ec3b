"""The synthetic generator: layout, shapes, determinism, statistics and honest harvests."""

from __future__ import annotations

import numpy as np
import pytest

from avparse import synthetic
from avparse.data.layout import (
    FEATURE_KINDS,
    FUSED_HARVEST_FOLDERS,
    HARVEST_FOLDERS,
    LLP_FILES,
    SCORE_FOLDERS,
    SOFT_HARVEST_FOLDERS,
)
from avparse.data.llp import LLPAnnotations
from avparse.errors import AvparseError
from avparse.vocab import AVE, LLP


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "root"
    return synthetic.generate_llp(root, n_train=12, n_val=6, n_test=7, seed=3)


def test_layout_is_readable_and_shaped(small_root):
    ann = LLPAnnotations(small_root)
    for split, n in (("train", 12), ("val", 6), ("test", 7)):
        weak = ann.weak(split)
        assert len(weak) == n and weak.labels.any(1).all()
        for clip in weak.ids:
            for kind in synthetic.FEATURE_SETS["valor"]:
                x = np.load(small_root / FEATURE_KINDS[kind].folder / f"{clip}.npy")
                assert x.shape == FEATURE_KINDS[kind].shape and x.dtype == np.float32
            fused = [f"{synthetic.FUSED}/{f}" for f in SOFT_HARVEST_FOLDERS.values()]
            for folder in (
                *HARVEST_FOLDERS.values(), *FUSED_HARVEST_FOLDERS.values(),
                *SOFT_HARVEST_FOLDERS.values(), *SCORE_FOLDERS.values(), *fused,
            ):  # fmt: skip
                h = np.load(small_root / folder / f"{clip}.npy")
                assert h.shape == (10, len(LLP)) and h.dtype == np.float32
    audio, visual = ann.dense("test")
    assert audio.shape == visual.shape == (7, 10, len(LLP))
    # Every dense event belongs to a tagged class, and every test clip has some event.
    tags = ann.weak("test").labels
    assert not ((audio.any(1) | visual.any(1)) & ~tags).any()
    full = LLPAnnotations(small_root).weak("train").filenames
    assert (small_root / LLP_FILES["full"]).read_text().count("\n") == 1 + 12 + 6 + 7
    assert len(set(full)) == 12


def test_harvests_are_restricted_to_weak_labels(small_root):
    ann = LLPAnnotations(small_root)
    for split in ("train", "val", "test"):
        weak = ann.weak(split)
        for clip, tags in zip(weak.ids, weak.labels, strict=True):
            for folder in (*HARVEST_FOLDERS.values(), *FUSED_HARVEST_FOLDERS.values()):
                h = np.load(small_root / folder / f"{clip}.npy")
                assert set(np.unique(h)) <= {0.0, 1.0}
                assert not h[:, ~tags].any()


def test_deterministic_and_reused(tmp_path, small_root):
    again = synthetic.generate_llp(tmp_path / "b", n_train=12, n_val=6, n_test=7, seed=3)
    for name in LLP_FILES.values():
        assert (again / name).read_bytes() == (small_root / name).read_bytes()
    clip = LLPAnnotations(again).weak("val").ids[0]
    for kind in ("vggish", "res152"):
        folder = FEATURE_KINDS[kind].folder
        assert np.array_equal(
            np.load(again / folder / f"{clip}.npy"), np.load(small_root / folder / f"{clip}.npy")
        )
    # A finished root with the same settings is reused; other settings are refused.
    stamp = (again / synthetic.COMPLETE_MARKER).stat().st_mtime_ns
    synthetic.generate_llp(again, n_train=12, n_val=6, n_test=7, seed=3)
    assert (again / synthetic.COMPLETE_MARKER).stat().st_mtime_ns == stamp
    with pytest.raises(AvparseError, match="other settings"):
        synthetic.generate_llp(again, n_train=12, n_val=6, n_test=7, seed=4)
    other = synthetic.generate_llp(tmp_path / "c", n_train=12, n_val=6, n_test=7, seed=4)
    assert (other / LLP_FILES["train"]).read_bytes() != (again / LLP_FILES["train"]).read_bytes()


def test_valor_plus_plus_features_and_array_output():
    splits = synthetic.generate_arrays(n_train=3, n_val=4, n_test=5, features="valor++", seed=1)
    test = splits["test"]
    assert test.features["clap"].shape == (5, 64, 768)
    assert test.features["clip"].shape == (5, 10, 768)
    assert test.features["r2plus1d_18"].shape == (5, 10, 512)
    np.testing.assert_allclose(np.linalg.norm(test.features["clip"], axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(AvparseError, match="unknown synthetic feature set"):
        synthetic.generate_arrays(n_train=1, n_val=1, n_test=1, features="nope")


def test_statistics_match_the_real_annotations():
    stats = synthetic.load_stats()["llp"]
    rng = np.random.default_rng(0)
    weak, audio, visual = synthetic.sample_llp_events(4000, rng, synthetic.SyntheticConfig())
    k = np.asarray(stats["classes_per_clip"]["counts"], dtype=float)
    assert abs(weak.sum(1).mean() - (k * np.arange(len(k))).sum() / k.sum()) < 0.05
    freq = weak.sum(0) / weak.sum()
    assert np.corrcoef(freq, stats["class_frequency"])[0, 1] > 0.95
    a_any, v_any = audio.any(1), visual.any(1)
    tagged = weak.sum()
    shares = (
        np.array([(a_any & ~v_any).sum(), (~a_any & v_any).sum(), (a_any & v_any).sum()]) / tagged
    )
    # Per-class modality shares (from dense val + test) weighted by the class mix of all splits.
    kinds = np.asarray(stats["modality"]["per_class_counts"], dtype=float)
    per_class = kinds / kinds.sum(1, keepdims=True)
    expected = np.asarray(stats["class_frequency"]) @ per_class
    np.testing.assert_allclose(shares, expected[:3], atol=0.03)
    # Full-length runs are the most common length, as in LLP.
    lengths = audio.sum(1)[a_any]
    assert np.bincount(lengths, minlength=11).argmax() == 10


def test_teachers_beat_the_weak_labels_and_fused_is_worse():
    """The harvests carry real but imperfect timing/modality information."""
    from avparse.eval.metrics import llp_scores

    split = synthetic.generate_arrays(n_train=0, n_val=200, n_test=200, features="valor++")["test"]
    modality, fused_labels = split.labels["modality"], split.labels["fused"]
    harvest = llp_scores(modality["audio"][0], modality["visual"][0], split.audio, split.visual)
    fused = llp_scores(
        fused_labels["audio"][0], fused_labels["visual"][0], split.audio, split.visual
    )
    everywhere = np.repeat(split.weak[:, None, :], 10, axis=1)
    weak = llp_scores(everywhere, everywhere, split.audio, split.visual)
    assert weak["seg_type"] < harvest["seg_type"] < 95
    assert fused["seg_type"] < harvest["seg_type"]


def test_ave_synthetic_root(tmp_path):
    from avparse.data.ave import AVEAnnotations

    root = synthetic.generate_ave(tmp_path / "ave", n_train=10, n_val=5, n_test=6, seed=2)
    ann = AVEAnnotations(root)
    test = ann.split("test")
    assert len(test) == 6 and len(ann.split("train")) == 10
    assert test.segments.shape == (6, 10, len(AVE) + 1)
    # One event class per clip; every non-background segment carries that class.
    seg = test.segment_labels
    for row, cls in zip(seg, test.categories, strict=True):
        assert set(np.unique(row)) <= {int(cls), len(AVE)}
    for clip, tags in zip(test.ids, test.labels, strict=True):
        h = np.load(root / HARVEST_FOLDERS["audio"] / f"{clip}.npy")
        assert h.shape == (10, len(AVE)) and not h[:, ~tags].any()
        assert np.load(root / "feats/vggish" / f"{clip}.npy").shape == (10, 128)
    # Calibrated as `avparse calibrate --task ave`: 5 val clips, so every class takes the
    # threshold pooled over all classes (one per modality), recorded in calibrate's format.
    import json

    cal = json.loads((root / synthetic.THRESHOLDS_FILE).read_text())
    assert cal["vocabulary"] == "ave" and cal["calibration"]["clips"] == 5
    for m in ("visual", "audio"):
        assert {v["source"] for v in cal["calibration"]["segment_f"][m].values()} == {"pooled"}
        assert len(set(cal[m].values())) == 1


def test_ave_arrays_without_features_match_the_root(tmp_path):
    root = synthetic.generate_ave(tmp_path / "ave", n_train=10, n_val=5, n_test=6, seed=2)
    splits = synthetic.generate_arrays(
        n_train=10, n_val=5, n_test=6, seed=2, task="ave", features=None
    )
    test = splits["test"]
    assert test.features == {} and test.scores["audio"].shape == (6, 10, len(AVE))
    for clip, hard in zip(test.ids, test.labels["modality"]["visual"][0], strict=True):
        assert np.array_equal(np.load(root / HARVEST_FOLDERS["visual"] / f"{clip}.npy"), hard)


def test_ave_with_real_annotations(tmp_path, ave_root):
    from avparse.data.ave import AVEAnnotations

    root = synthetic.generate_ave(
        tmp_path / "real", annotations=ave_root, per_split=8, features="valor++"
    )
    ann = AVEAnnotations(root)
    real = AVEAnnotations(ave_root)
    for split in ("train", "val", "test"):
        mine, theirs = ann.split(split), real.split(split)
        assert mine.ids == theirs.ids[:8]
        assert np.array_equal(mine.segments, theirs.segments[:8])
        for clip in mine.ids:
            assert (root / "CLIP/features" / f"{clip}.npy").is_file()


def test_fused_root_swaps_only_the_harvests(tmp_path, small_root):
    out = synthetic.fused_root(small_root, tmp_path / "fused")
    clip = LLPAnnotations(out).weak("train").ids[0]
    for modality, folder in HARVEST_FOLDERS.items():
        fused = small_root / FUSED_HARVEST_FOLDERS[modality] / f"{clip}.npy"
        assert np.array_equal(np.load(out / folder / f"{clip}.npy"), np.load(fused))
    for kind in synthetic.FEATURE_SETS["valor"]:
        folder = FEATURE_KINDS[kind].folder
        assert (out / folder / f"{clip}.npy").read_bytes() == (
            small_root / folder / f"{clip}.npy"
        ).read_bytes()
    assert synthetic.fused_root(small_root, tmp_path / "fused") == out  # idempotent


def test_harvest_files_are_the_real_teacher_code_on_the_saved_logits(small_root):
    """Scores, soft and hard labels as ``avparse harvest`` writes them: relabelling the saved
    logits with the saved thresholds (a thresholds file ``load_thresholds`` reads) by the
    harvest's own rule gives the saved labels, for both teachers."""
    from avparse.harvest.outputs import ClipOutputs
    from avparse.teachers.rule import label
    from avparse.vocab import load_thresholds

    vocab = load_thresholds(small_root / synthetic.THRESHOLDS_FILE, LLP)
    thresholds = {m: np.asarray(vocab.thresholds(m), np.float32) for m in ("visual", "audio")}
    weak = LLPAnnotations(small_root).weak("train")
    for teacher, base in (("modality", small_root), ("fused", small_root / synthetic.FUSED)):
        for clip, tags in zip(weak.ids, weak.labels, strict=True):
            scores = ClipOutputs(small_root, clip).load_scores()
            for m, (hard, soft) in label(scores, thresholds, tags, teacher).items():
                out = ClipOutputs(base, clip)
                assert np.array_equal(np.load(out.hard(m)), hard)
                assert np.array_equal(np.load(out.soft(m)), soft)


def test_data_synth_then_the_newcomer_path(cli, tmp_path):
    """``avparse data synth`` writes the demo's data; data check, train, evaluate and score run
    on it step by step, all through ``main(argv)``, as the README's quick start shows."""
    import json

    root = tmp_path / "synth"
    made = cli(
        "data", "synth", root, "--clips", "16", "--val-clips", "6", "--test-clips", "6",
        "--seed", "2",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert f"avparse train --data {root}" in made.out
    ref = synthetic.generate_llp(tmp_path / "ref", n_train=16, n_val=6, n_test=6, seed=2)
    for name in LLP_FILES.values():  # the demo's generator, same settings -> same files
        assert (root / name).read_bytes() == (ref / name).read_bytes()
    again = cli("data", "synth", root, "--clips", "16", "--val-clips", "6", "--test-clips", "6",
                "--seed", "2")  # fmt: skip
    assert again.code == 0 and "reused" in again.out
    other = cli("data", "synth", root, "--clips", "16", "--val-clips", "6", "--test-clips", "6")
    assert other.code == 2 and "other settings" in other.err
    assert cli("data", "check", root).code == 0
    run = tmp_path / "run"
    tiny = ("--set", "d_model=8", "--set", "nhead=2", "--set", "dim_feedforward=16")
    trained = cli("train", "--data", root, "--preset", "valor", "--out", run, "--epochs", "1",
                  "--batch-size", "8", *tiny)  # fmt: skip
    assert trained.code == 0, trained.err
    test = tmp_path / "test"
    evaluated = cli("evaluate", "--data", root, "--checkpoint", run / "model", "--split", "test",
                    "--out", test)  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    scored = cli("score", "--annotations", root, "--split", "test", "--audio", test / "audio.tsv",
                 "--visual", test / "visual.tsv", "--json", tmp_path / "s.json")  # fmt: skip
    assert scored.code == 0, scored.err
    metrics = json.loads((test / "metrics.json").read_text())
    assert json.loads((tmp_path / "s.json").read_text())["seg_type"] == pytest.approx(
        metrics["seg_type"]
    )


def test_synth_refuses_a_folder_that_is_not_a_synthetic_root(cli, tmp_path):
    """Issue 20 item 1: real data (a copy of LLP's annotation files, a harvest root, an AVE
    ``Annotations.txt``) is never replaced, whatever the flags; ``--overwrite`` replaces only a
    synthetic root; an interrupted synthetic root (started marker) is made again."""
    real = tmp_path / "llpcopy"
    real.mkdir()
    (real / LLP_FILES["train"]).write_text("filename\tevent_labels\nreal\tSpeech\n")
    before = (real / LLP_FILES["train"]).read_bytes()
    for flags in ((), ("--overwrite",)):
        got = cli("data", "synth", real, "--clips", "10", "--val-clips", "5",
                  "--test-clips", "5", *flags)  # fmt: skip
        assert got.code == 2 and "not a synthetic root" in got.err, got.err
        assert len(got.err.strip().splitlines()) == 1
    assert (real / LLP_FILES["train"]).read_bytes() == before
    assert sorted(p.name for p in real.iterdir()) == [LLP_FILES["train"]]
    ave = tmp_path / "avecopy"
    ave.mkdir()
    (ave / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n")
    for overwrite in (False, True):
        with pytest.raises(AvparseError, match="not a synthetic root"):
            synthetic.generate_ave(ave, n_train=8, n_val=3, n_test=3, overwrite=overwrite)
    assert sorted(p.name for p in ave.iterdir()) == ["Annotations.txt"]
    # An interrupted root of ours is made again; a finished one is replaced only with --overwrite.
    ours = tmp_path / "ours"
    ours.mkdir()  # an empty folder is fine
    synthetic.generate_llp(ours, n_train=8, n_val=4, n_test=4, seed=1)
    assert synthetic.is_synthetic(ours) and synthetic.is_complete(ours)
    assert not (ours / synthetic.STARTED_MARKER).exists()
    (ours / synthetic.COMPLETE_MARKER).unlink()
    (ours / synthetic.STARTED_MARKER).write_text("{}")  # as a generation killed midway leaves it
    synthetic.generate_llp(ours, n_train=8, n_val=4, n_test=4, seed=2)
    assert synthetic.is_complete(ours)
    with pytest.raises(AvparseError, match="--overwrite"):
        synthetic.generate_llp(ours, n_train=8, n_val=4, n_test=4, seed=3)
    synthetic.generate_llp(ours, n_train=8, n_val=4, n_test=4, seed=3, overwrite=True)
    assert synthetic.is_complete(ours)
