"""Packed feature store: exact contents, memory maps, validation of all files, incremental, atomic."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
from avparse.data.llp import LLPAnnotations, clip_id
from avparse.data.store import PackError, ensure_packed, open_split, pack
from avparse.data.synthetic import generate_llp


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    return generate_llp(tmp_path_factory.mktemp("llp") / "root", n_train=12, n_val=6, n_test=6)


@pytest.fixture
def root(source_root: Path, tmp_path: Path) -> Path:
    """A private copy (tests modify files)."""
    import shutil

    return Path(shutil.copytree(source_root, tmp_path / "root"))


def test_pack_matches_source_files(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    report = pack(root, out)
    assert report.files_read == 12 * 5 + 6 * 3 * 2  # train: 3 features + 2 harvests
    manifest = json.loads((out / "manifest.json").read_text())
    ann = LLPAnnotations(root)
    for split in ("train", "val", "test"):
        packed = open_split(out, split)
        assert packed.filenames == ann.weak(split).filenames
        for kind in ("vggish", "res152", "r2plus1d_18"):
            arr = packed[kind]
            assert (
                isinstance(arr, np.memmap) and arr.dtype == np.float32 and not arr.flags.writeable
            )
            assert arr.shape == (len(packed), *FEATURE_KINDS[kind].shape)
            for i, name in enumerate(packed.filenames):
                src = np.load(root / FEATURE_KINDS[kind].folder / f"{clip_id(name)}.npy")
                np.testing.assert_array_equal(arr[i], src)
            entry = manifest["splits"][split]["arrays"][kind]
            assert entry["source"] == FEATURE_KINDS[kind].folder and entry["dtype"] == "float32"
            assert entry["shape"] == list(arr.shape) and len(entry["sha"]) == 32
            assert all(len(v) == 3 for v in entry["files"].values())  # mtime, size, hash
    harvest = open_split(out, "train")["harvest_audio"]
    first = open_split(out, "train").filenames[0]
    src = np.load(root / HARVEST_FOLDERS["audio"] / f"{clip_id(first)}.npy")
    np.testing.assert_array_equal(harvest[0], src.astype(np.uint8))
    assert "harvest_audio" not in open_split(out, "val").arrays


def test_incremental_repack_reads_only_changed_files(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    pack(root, out)
    again = pack(root, out)
    assert again.files_read == 0 and again.written == []
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    name = open_split(out, "val").filenames[2]
    path = root / "feats/vggish" / f"{clip_id(name)}.npy"
    new = np.full((10, 128), 7.0, dtype=np.float32)
    np.save(path, new)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse file systems
    report = pack(root, out)
    assert report.files_read == 1 and report.written == ["val/vggish"]
    np.testing.assert_array_equal(open_split(out, "val")["vggish"][2], new)
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    changed = {p.relative_to(out).as_posix() for p in before if before[p] != after[p]}
    assert changed == {"val/vggish.npy"}
    # touched but same content: re-read and re-hashed, array not rewritten
    os.utime(path, ns=(2, 2))
    report = pack(root, out)
    assert report.files_read == 1 and report.written == []


def test_all_problems_reported_at_once(root: Path, tmp_path: Path) -> None:
    ann = LLPAnnotations(root)
    train, val = ann.weak("train").ids, ann.weak("val").ids
    np.save(root / "feats/vggish" / f"{train[0]}.npy", np.zeros((9, 128), np.float32))
    bad = np.zeros((80, 2048), np.float32)
    bad[3, 4] = np.nan
    np.save(root / "feats/res152" / f"{train[1]}.npy", bad)
    (root / "feats/r2plus1d_18" / f"{val[0]}.npy").unlink()
    np.save(root / "feats/vggish" / f"{val[1]}.npy", np.zeros((10, 128), np.int64))
    (root / "CLIP/segment_pseudo_labels" / f"{train[2]}.npy").write_bytes(b"garbage")
    with pytest.raises(PackError) as err:
        pack(root, tmp_path / "store")
    problems = err.value.problems
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    assert f"{train[0]}.npy: shape (9, 128), expected (10, 128)" in text
    assert f"{train[1]}.npy: 1 non-finite values" in text
    assert f"{val[0]}.npy: missing" in text
    assert f"{val[1]}.npy: dtype int64, expected a float dtype" in text
    assert f"{train[2]}.npy: not a readable .npy file" in text
    assert all("\n" not in p for p in problems)
    assert "\n" not in str(err.value) and "and 4 more" in str(err.value)


def test_failed_write_leaves_old_array_and_no_temp_files(
    root: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "store"
    pack(root, out)
    old = np.array(open_split(out, "test")["vggish"])
    name = open_split(out, "test").filenames[0]
    path = root / "feats/vggish" / f"{clip_id(name)}.npy"
    np.save(path, np.ones((10, 128), np.float32))
    os.utime(path, ns=(5, 5))
    real = np.lib.format.open_memmap

    def broken(*args, **kwargs):
        real(*args, **kwargs)  # the temporary file exists, then the write fails
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "open_memmap", broken)
    with pytest.raises(OSError, match="disk full"):
        pack(root, out)
    monkeypatch.setattr(np.lib.format, "open_memmap", real)
    np.testing.assert_array_equal(open_split(out, "test")["vggish"], old)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    pack(root, out)
    np.testing.assert_array_equal(open_split(out, "test")["vggish"][0], np.ones((10, 128)))


def test_ensure_packed_repacks_stale_store(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    kinds = {"val": ["vggish"]}
    first = ensure_packed(root, out, splits=("val",), kinds=kinds)["val"]
    assert set(first.arrays) == {"vggish"}
    name = first.filenames[0]
    path = root / "feats/vggish" / f"{clip_id(name)}.npy"
    np.save(path, np.full((10, 128), 3.0, np.float32))
    os.utime(path, ns=(9, 9))
    second = ensure_packed(root, out, splits=("val",), kinds=kinds)["val"]
    assert float(second["vggish"][0, 0, 0]) == 3.0
    # packing another split keeps this one's entries
    ensure_packed(root, out, splits=("test",), kinds={"test": ["vggish"]})
    assert open_split(out, "val", ["vggish"]).arrays


def test_pack_cli(root: Path, tmp_path: Path, cli) -> None:
    pytest.importorskip("avparse.cli.data")
    out = tmp_path / "store"
    res = cli("data", "pack", root, "--out", out)
    assert res.code == 0, res.err
    assert (out / "manifest.json").is_file()
    np.save(root / "feats/vggish" / f"{LLPAnnotations(root).weak('val').ids[0]}.npy", np.zeros(3))
    res = cli("data", "pack", root, "--out", out)
    assert res.code == 2
    assert "shape (3,), expected (10, 128)" in res.err
