"""UWAV's generated LLP labels (LLP_Dataset/ in UWAV's naming) as the temporal-teacher harvest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avparse.data.layout import (
    HARVEST_FOLDERS,
    SCORE_FOLDERS,
    SOFT_HARVEST_FOLDERS,
    TEMPORAL_HARVEST,
    TEMPORAL_MANIFEST,
    TEMPORAL_THRESHOLDS,
)
from avparse.data.llp import LLPAnnotations
from avparse.errors import AvparseError
from avparse.synthetic import generate_llp
from avparse.temporal.uwav_labels import import_uwav_labels

PREFIX = {"audio": "a", "visual": "v"}
ABSENT = 1  # a class whose threshold is -inf (absent from val), as UWAV writes it; in train tags


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, Path]:
    """A small LLP root and UWAV's label folder for it, in UWAV's names."""
    base = tmp_path_factory.mktemp("uwav")
    root = generate_llp(base / "root", n_train=6, n_val=4, n_test=4)
    run = base / "run"
    labels = run / "LLP_Dataset"
    rng = np.random.default_rng(0)
    ann = LLPAnnotations(root)
    for p in PREFIX.values():
        theta = rng.normal(0, 1, 25)
        theta[ABSENT] = -np.inf
        (labels / f"{p}_segmentwise_pseudo_labels").mkdir(parents=True)
        (labels / f"{p}_segmentwise_logits").mkdir(parents=True)
        np.save(labels / f"{p}_classwise_threhsolds.npy", theta)
        for split in ("train", "val", "test"):
            weak = ann.weak(split)
            for cid, tags in zip(weak.ids, weak.labels, strict=True):
                z = rng.normal(0, 3, (10, 25)).astype(np.float32)
                hard = ((z > theta) & tags[None, :].astype(bool)).astype(np.float32)
                np.save(labels / f"{p}_segmentwise_logits" / f"{cid}.npy", z)
                np.save(labels / f"{p}_segmentwise_pseudo_labels" / f"{cid}.npy", hard)
    return root, run


@pytest.fixture
def tree(source, tmp_path) -> tuple[Path, Path]:
    root, run = source
    return Path(shutil.copytree(root, tmp_path / "root")), Path(
        shutil.copytree(run, tmp_path / "run")
    )


def test_import_writes_the_temporal_harvest_with_uwavs_rule(tree) -> None:
    from avparse.train.uwav import soft_targets

    root, run = tree
    manifest = import_uwav_labels(run / "LLP_Dataset", root)
    assert manifest["splits"] == {"train": 6, "val": 4, "test": 4}
    assert set(manifest["label_scores"]) == {"val", "test"}  # splits with dense labels
    ann = LLPAnnotations(root)
    labels = run / "LLP_Dataset"
    checked_absent = False
    for m, p in PREFIX.items():
        theta = np.load(labels / f"{p}_classwise_threhsolds.npy")
        weak = ann.weak("train")
        z_all = np.stack(
            [np.load(labels / f"{p}_segmentwise_logits" / f"{c}.npy") for c in weak.ids]
        )
        for cid, tags, z in zip(weak.ids, weak.labels, z_all, strict=True):
            out = root / TEMPORAL_HARVEST
            hard = np.load(out / HARVEST_FOLDERS[m] / f"{cid}.npy")
            uwav_hard = np.load(labels / f"{p}_segmentwise_pseudo_labels" / f"{cid}.npy")
            assert hard.dtype == np.uint8 and np.array_equal(hard, uwav_hard.astype(np.uint8))
            assert np.array_equal(np.load(out / SCORE_FOLDERS[m] / f"{cid}.npy"), z)
            soft = np.load(out / SOFT_HARVEST_FOLDERS[m] / f"{cid}.npy")
            # what the student trains on (--loss uwav, T = 2) is UWAV's sigmoid((z - theta) / 2)
            target = soft_targets(
                torch.from_numpy(soft)[None], torch.from_numpy(tags.astype(np.float32))[None]
            )[0].numpy()
            finite = np.isfinite(theta)
            theta_used = np.where(finite, theta, z_all[:, :, ABSENT].min() - 1.0)
            want = 1 / (1 + np.exp(-(z - theta_used) / 2)) * tags[None, :]
            np.testing.assert_allclose(target, want, atol=1e-4)  # float32 soft labels
            assert not soft[:, ~tags.astype(bool)].any()  # 0 outside the weak labels
            checked_absent = checked_absent or bool(tags[ABSENT])
    assert checked_absent  # the -inf class is in some clip's weak labels: its rule was checked
    thresholds = json.loads((root / TEMPORAL_THRESHOLDS).read_text())
    assert thresholds["audio"][ABSENT] is None and isinstance(thresholds["audio"][0], float)
    assert "UWAV" in json.loads((root / TEMPORAL_MANIFEST).read_text())["teacher"]


def test_run_folder_and_a_split_uwav_did_not_label(tree) -> None:
    root, run = tree
    ann = LLPAnnotations(root)
    for p in PREFIX.values():
        for kind in ("pseudo_labels", "logits"):
            for cid in ann.weak("val").ids:
                (run / "LLP_Dataset" / f"{p}_segmentwise_{kind}" / f"{cid}.npy").unlink()
    manifest = import_uwav_labels(run, root)  # the teacher's run folder holding LLP_Dataset/
    assert manifest["splits"] == {"train": 6, "test": 4}


@pytest.mark.parametrize("damage", ["missing", "shape", "values", "thresholds", "partial"])
def test_bad_trees_are_one_line_and_write_nothing(tree, damage) -> None:
    root, run = tree
    labels = run / "LLP_Dataset"
    ann = LLPAnnotations(root)
    first = ann.weak("train").ids[0]
    expect = {
        "missing": f"a_segmentwise_logits/{first}.npy: missing (clip of split 'train')",
        "shape": "shape (9, 25), expected (10, 25)",
        "values": "hard labels must be 0 or 1",
        "thresholds": "v_classwise_threhsolds.npy: shape (24,), expected (25,)",
        "partial": "split 'val' is partly there",
    }[damage]
    if damage == "missing":
        (labels / "a_segmentwise_logits" / f"{first}.npy").unlink()
    elif damage == "shape":
        np.save(labels / "a_segmentwise_logits" / f"{first}.npy", np.zeros((9, 25)))
    elif damage == "values":
        np.save(labels / "v_segmentwise_pseudo_labels" / f"{first}.npy", np.full((10, 25), 0.5))
    elif damage == "thresholds":
        np.save(labels / "v_classwise_threhsolds.npy", np.zeros(24))
    else:
        (labels / "a_segmentwise_logits" / f"{ann.weak('val').ids[0]}.npy").unlink()
    with pytest.raises(AvparseError) as info:
        import_uwav_labels(labels, root)
    assert expect in str(info.value) and "\n" not in str(info.value)
    assert not (root / TEMPORAL_HARVEST).exists()


def test_cli_import_and_overwrite(tree, cli) -> None:
    root, run = tree
    res = cli("data", "import-uwav", root, run, "--no-progress")
    assert res.code == 0, res.err
    assert "UWAV's labels imported (train 6, val 4, test 4 clips)" in res.out
    res = cli("data", "import-uwav", root, run, "--no-progress")
    assert res.code == 2 and "holds a teacher harvest; use --overwrite" in res.err
    assert cli("data", "import-uwav", root, run, "--overwrite", "--no-progress").code == 0
    res = cli("data", "import-uwav", root, run / "nowhere", "--no-progress")
    assert res.code == 2 and "folder not found" in res.err


def test_the_student_trains_on_the_imported_labels(tree, tmp_path, cli) -> None:
    """The point of the import: UWAV's labels train avparse's student, no file renamed."""
    root, run = tree
    assert cli("data", "import-uwav", root, run, "--no-progress").code == 0
    shutil.rmtree(root / "CLAP")  # the frame-wise harvest is not what is read
    shutil.rmtree(root / "CLIP" / "segment_pseudo_labels")
    out = tmp_path / "student"
    res = cli("train", "--data", root, "--preset", "tiny", "--loss", "uwav", "--set",
              "harvest=temporal", "--epochs", "1", "--no-progress", "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    assert (out / "model" / "config.json").is_file()
