"""The official AVE features (AVE-ECCV18 ``.h5`` files) read as downloaded, no conversion."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from avparse.data import ave_h5  # noqa: E402
from avparse.data.ave import AVE_FILES, AVEAnnotations, read_ave_split  # noqa: E402
from avparse.data.layout import AVE_H5_DATASET, FEATURE_KINDS  # noqa: E402
from avparse.errors import AvparseError  # noqa: E402


def _write(path: Path, data: np.ndarray, key: str = AVE_H5_DATASET) -> None:
    with h5py.File(path, "w") as fh:
        fh.create_dataset(key, data=data)


def official_files(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the three official files for the rows of ``root``'s ``Annotations.txt``."""
    clips = AVEAnnotations(root).clips
    rng = np.random.default_rng(seed)
    n = len(clips)
    data = {
        "audio_feature.h5": rng.standard_normal((n, 10, 128)).astype(np.float32),
        "visual_feature.h5": rng.random((n, 10, 7, 7, 512)).astype(np.float32),
        "labels.h5": clips.segments.astype(np.float64),  # the release stores floats
    }
    for name, arr in data.items():
        _write(root / name, arr)
    return data


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    from avparse.synthetic import generate_ave

    root = generate_ave(tmp_path_factory.mktemp("aveh5") / "root", n_train=8, n_val=3, n_test=3)
    official_files(root)
    # what the AVE release has: the annotation and split files and the .h5 features; the motion
    # features stay (the student of this test still reads a 3-D stream)
    for folder in ("feats/vggish", "feats/res152", "CLIP", "CLAP"):
        shutil.rmtree(root / folder, ignore_errors=True)
    return root


@pytest.fixture
def root(source_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source_root, tmp_path / "root"))


def test_kinds_are_named_in_the_layout() -> None:
    assert FEATURE_KINDS["ave_vggish"].folder == "audio_feature.h5"
    assert FEATURE_KINDS["ave_vgg19"].h5_shape == (10, 7, 7, 512)
    assert FEATURE_KINDS["ave_vgg19"].shape == (10, 512)  # what the student reads
    assert set(ave_h5.h5_kinds()) == {"ave_vggish", "ave_vgg19"}


def test_split_rows_are_the_files_rows_in_split_order(root: Path, tmp_path: Path) -> None:
    assert ave_h5.is_ave_h5_root(root)
    with h5py.File(root / "audio_feature.h5") as fh:
        audio = fh[AVE_H5_DATASET][()]
    with h5py.File(root / "visual_feature.h5") as fh:
        maps = fh[AVE_H5_DATASET][()]
    order = read_ave_split(root / AVE_FILES["test"])
    got = ave_h5.split_rows(root, "ave_vggish", order)
    np.testing.assert_array_equal(got, audio[order])
    cache = tmp_path / "store" / "h5"
    pooled = ave_h5.split_rows(root, "ave_vgg19", order, cache)
    np.testing.assert_allclose(pooled, maps[order].mean(axis=(2, 3)), rtol=1e-6, atol=1e-6)
    assert pooled.shape == (len(order), 10, 512)
    assert (cache / "ave_vgg19.npy").is_file()
    # the cache is used while the file is unchanged, and redone when it changes
    stamp = json.loads((cache / "ave_vgg19.json").read_text())
    np.save(cache / "ave_vgg19.npy", np.zeros_like(np.load(cache / "ave_vgg19.npy")))
    assert not ave_h5.split_rows(root, "ave_vgg19", order, cache).any()
    _write(root / "visual_feature.h5", maps * 2)
    again = ave_h5.split_rows(root, "ave_vgg19", order, cache)
    np.testing.assert_allclose(again, 2 * maps[order].mean(axis=(2, 3)), rtol=1e-6, atol=1e-6)
    assert json.loads((cache / "ave_vgg19.json").read_text()) != stamp


@pytest.mark.parametrize(
    ("name", "data", "key", "message"),
    [
        ("audio_feature.h5", np.zeros((14, 10, 128)), "features", "no HDF5 dataset 'avadataset'"),
        ("audio_feature.h5", np.zeros((14, 10, 64)), AVE_H5_DATASET, "expected (clips, 10, 128)"),
        ("audio_feature.h5", np.zeros((13, 10, 128)), AVE_H5_DATASET, "holds 13 clips"),
        ("visual_feature.h5", np.full((14, 10, 7, 7, 512), np.nan), AVE_H5_DATASET, "row 0"),
    ],
)
def test_bad_files_are_one_line(root: Path, name, data, key, message) -> None:
    (root / name).unlink()
    _write(root / name, data.astype(np.float32), key)
    kind = "ave_vggish" if name.startswith("audio") else "ave_vgg19"
    with pytest.raises(AvparseError, match=re.escape(message)) as info:
        ave_h5.split_rows(root, kind, np.arange(3))
    assert "\n" not in str(info.value) and name in str(info.value)
    problems, _ = ave_h5.check_ave_h5(root)
    assert any(message in p for p in problems)


def test_check_finds_labels_that_disagree_with_annotations(root: Path) -> None:
    assert ave_h5.check_ave_h5(root) == ([], [])
    with h5py.File(root / "labels.h5", "r+") as fh:
        labels = fh[AVE_H5_DATASET][()]
        labels[2] = np.roll(labels[2], 1, axis=-1)
        fh[AVE_H5_DATASET][...] = labels
    problems, _ = ave_h5.check_ave_h5(root)
    assert len(problems) == 1 and "1 of 14 clips' segment labels differ" in problems[0]
    assert ave_h5.check_ave_h5(root, quick=True) == ([], [])  # headers only


def test_data_check_knows_an_official_ave_root(root: Path, cli) -> None:
    res = cli("data", "check", root)
    assert res.code == 0, res.err + res.out
    assert "audio_feature.h5" in res.out and "(14, 10, 7, 7, 512)" in res.out and "ok" in res.out
    (root / "visual_feature.h5").write_bytes(b"not hdf5")
    res = cli("data", "check", root)
    assert res.code == 1
    assert "visual_feature.h5: not a readable HDF5 file" in res.out + res.err


def test_ave_task_trains_and_evaluates_on_the_h5_features(root: Path, tmp_path: Path, cli):
    from avparse.model.config import model_config
    from avparse.train.tasks import LoadRequest, get_task

    feats = ("--set", "audio_feature=ave_vggish", "--set", "visual_feature=ave_vgg19")
    run = tmp_path / "run"
    res = cli("train", "--task", "ave", "--data", root, "--preset", "tiny", "--epochs", "1",
              *feats, "--loss", "han", "--no-progress", "--out", run)  # fmt: skip
    assert res.code == 0, res.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["audio_feature"] == "ave_vggish" and config["visual_feature"] == "ave_vgg19"
    ev = cli("evaluate", "--task", "ave", "--data", root, "--checkpoint", run / "model",
             "--out", tmp_path / "eval")  # fmt: skip
    assert ev.code == 0, ev.err
    assert "accuracy" in ev.out
    # what the task hands the model: the split's rows of the .h5 files, maps pooled
    cfg = model_config("tiny", audio_feature="ave_vggish", visual_feature="ave_vgg19",
                       vocabulary="ave")  # fmt: skip
    data = get_task("ave").load(LoadRequest(root, None, "val", cfg))
    order = read_ave_split(root / AVE_FILES["val"])
    with h5py.File(root / "visual_feature.h5") as fh:
        maps = fh[AVE_H5_DATASET][()]
    np.testing.assert_allclose(
        data.inputs["visual"], maps[order].mean(axis=(2, 3)), rtol=1e-6, atol=1e-6
    )


def test_data_pack_pools_the_maps_once(root: Path, cli) -> None:
    res = cli("data", "pack", root, "--no-progress")
    assert res.code == 0, res.err
    cached = root / "packed_ave" / ave_h5.CACHE_FOLDER / "ave_vgg19.npy"
    assert np.load(cached).shape == (14, 10, 512)
    assert not (root / "packed_ave" / ave_h5.CACHE_FOLDER / "ave_vggish.npy").exists()


def test_ave_official_preset_needs_only_the_release(root: Path, tmp_path: Path, cli) -> None:
    shutil.rmtree(root / "feats")  # no 3-D features: the preset reads the .h5 files alone
    run = tmp_path / "run"
    res = cli("train", "--data", root, "--preset", "ave-official", "--set", "num_layers=1",
              "--set", "nhead=2", "--set", "dim_feedforward=32", "--epochs", "1", "--no-progress",
              "--out", run)  # fmt: skip
    assert res.code == 0, res.err
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["vocabulary"] == "ave" and config["motion_feature"] == "none"
    assert 0.0 <= json.loads((run / "test_metrics.json").read_text())["accuracy"] <= 100.0
