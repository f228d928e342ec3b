"""UWAV's LLP layout read as downloaded: segment features, class embeddings, the CLIP + CLAP student."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avparse.data.check import check_root
from avparse.data.llp import LLPAnnotations
from avparse.errors import AvparseError
from avparse.synthetic import generate_llp
from avparse.vocab import LLP

SMALL = ("--set", "num_layers=1", "--set", "nhead=2", "--set", "dim_feedforward=32")


def uwav_files(root: Path, seed: int = 0) -> None:
    """UWAV's LLP additions (its README's file structure) for every clip of ``root``."""
    rng = np.random.default_rng(seed)
    ann = LLPAnnotations(root)
    for folder, dim in (("feats_CLIP", 768), ("feats_CLAP", 512)):
        (root / folder / "segment_feats").mkdir(parents=True)
        (root / folder / "event_feats").mkdir(parents=True)
        events = rng.standard_normal((len(LLP), dim)).astype(np.float32)
        np.save(root / folder / "event_feats" / "all_event_feats.npy", events)
        for split in ("train", "val", "test"):
            for cid in ann.weak(split).ids:
                x = rng.standard_normal((10, dim)).astype(np.float32)
                np.save(root / folder / "segment_feats" / f"{cid}.npy", x)


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    root = generate_llp(tmp_path_factory.mktemp("uwavllp") / "root", n_train=8, n_val=4, n_test=4)
    uwav_files(root)
    return root


@pytest.fixture
def root(source_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source_root, tmp_path / "root"))


def test_data_check_knows_uwavs_files(root: Path) -> None:
    report = check_root(root)
    assert report.ok, report.problems()
    folders = {f.folder: f for f in report.folders}
    assert folders["feats_CLIP/segment_feats"].splits["train"].present == 8
    assert any("all_event_feats.npy: UWAV's class embeddings (25, 512)" in n for n in report.notes)
    cid = LLPAnnotations(root).weak("val").ids[0]
    np.save(root / "feats_CLAP/segment_feats" / f"{cid}.npy", np.zeros((9, 512), np.float32))
    np.save(root / "feats_CLIP/event_feats/all_event_feats.npy", np.zeros((24, 768), np.float32))
    problems = check_root(root).problems()
    assert any(f"segment_feats/{cid}.npy" in p and "(9, 512)" in p for p in problems), problems
    assert any("all_event_feats.npy: shape (24, 768), expected (25, 768)" in p for p in problems)


def test_uwav_clipclap_student_trains_and_evaluates(root: Path, tmp_path: Path, cli) -> None:
    run = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "uwav-clipclap", *SMALL, "--epochs", "1",
              "--harvest", "frame",  # the synthetic root has the frame-wise teachers' harvest
              "--no-progress", "--out", run)  # fmt: skip
    assert res.code == 0, res.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert (config["audio_feature"], config["visual_feature"], config["motion_feature"]) == (
        "clap_segments", "clip_segments", "none"
    )  # fmt: skip
    assert config["arch"] == "uwav" and config["d_model"] == 768
    ev = cli("evaluate", "--data", root, "--checkpoint", run / "model", "--split", "test",
             "--out", tmp_path / "eval")  # fmt: skip
    assert ev.code == 0, ev.err
    assert "Type@AV" in ev.out


def test_teacher_reads_uwavs_class_embeddings(root: Path) -> None:
    from avparse.temporal.text import event_features

    text = event_features(root, {"audio": "uwav", "visual": "uwav"}, LLP)
    np.testing.assert_array_equal(
        text["visual"], np.load(root / "feats_CLIP/event_feats/all_event_feats.npy")
    )
    assert text["audio"].shape == (25, 512)
    (root / "feats_CLAP/event_feats/all_event_feats.npy").unlink()
    with pytest.raises(AvparseError, match=r"all_event_feats\.npy: missing"):
        event_features(root, {"audio": "uwav", "visual": "uwav"}, LLP)


def test_teacher_label_with_uwavs_checkpoint_and_class_embeddings(root: Path, tmp_path, cli):
    """A UWAV user's teacher run: its checkpoint_best.pt labels the root using the root's own
    all_event_feats.npy (no text model is loaded: the tests run offline)."""
    import torch

    from avparse.data.layout import HARVEST_FOLDERS, TEMPORAL_HARVEST
    from avparse.temporal.config import teacher_config
    from test_temporal_network import _UWAVTeacher  # UWAV's module layout, in the tests

    torch.manual_seed(0)
    pt = tmp_path / "checkpoint_best.pt"
    torch.save(_UWAVTeacher(teacher_config("tiny")).state_dict(), pt)
    res = cli("teacher", "label", "--data", root, "--teacher", pt, "--preset", "tiny", "--set",
              "clip_text=uwav", "--set", "clap_text=uwav", "--no-progress")  # fmt: skip
    assert res.code == 0, res.err
    cid = LLPAnnotations(root).weak("train").ids[0]
    labels = np.load(root / TEMPORAL_HARVEST / HARVEST_FOLDERS["audio"] / f"{cid}.npy")
    assert labels.shape == (10, 25)
