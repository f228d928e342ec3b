"""Packed feature store: exact contents, memory maps, validation of all files, incremental, atomic."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from avparse.data import store
from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS, TEACHER_KINDS
from avparse.data.llp import LLPAnnotations, clip_id
from avparse.data.store import PackError, ensure_packed, ensure_rows, open_split, pack
from avparse.errors import AvparseError
from avparse.synthetic import generate_llp


@pytest.fixture(scope="module")
def source_root(tmp_path_factory) -> Path:
    return generate_llp(tmp_path_factory.mktemp("llp") / "root", n_train=12, n_val=6, n_test=6)


@pytest.fixture
def root(source_root: Path, tmp_path: Path) -> Path:
    """A private copy (tests modify files)."""
    import shutil

    copy = Path(shutil.copytree(source_root, tmp_path / "root"))
    time.sleep(store.RACY_NS / 1e9)  # files changed just now are re-read by every pack
    return copy


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
            assert arr.shape == (len(packed), *FEATURE_KINDS[kind].packed_shape)
            for i, name in enumerate(packed.filenames):
                src = np.load(root / FEATURE_KINDS[kind].folder / f"{clip_id(name)}.npy")
                if kind == "res152":  # the store holds what the model reads: segment means
                    src = src.reshape(10, 8, 2048).mean(axis=1)
                np.testing.assert_array_equal(arr[i], src)
            entry = manifest["splits"][split]["arrays"][kind]
            assert entry["source"] == FEATURE_KINDS[kind].folder and entry["dtype"] == "float32"
            assert entry["shape"] == list(arr.shape) and len(entry["sha"]) == 32
            assert all(len(v) == 5 for v in entry["files"].values())  # size, times, inode, hash
    assert manifest["format"] == store.FORMAT
    assert open_split(out, "train")["res152"].shape == (12, 10, 2048)
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
    assert f"{train[1]}.npy: 1 non-finite value (NaN or inf)" in text
    assert f"{val[0]}.npy: missing" in text
    assert f"{val[1]}.npy: dtype int64, expected a floating dtype" in text
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


def test_rewrite_with_old_size_and_mtime_restored_is_noticed(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    pack(root, out, splits=("val",), kinds=["vggish"])
    path = root / "feats/vggish" / f"{LLPAnnotations(root).weak('val').ids[1]}.npy"
    before = path.stat()
    new = np.full((10, 128), 5.0, dtype=np.float32)
    with open(path, "r+b") as fh:  # in place: same inode, same size
        np.save(fh, new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size, before.st_mtime_ns, before.st_ino
    )  # fmt: skip
    report = pack(root, out, splits=("val",), kinds=["vggish"])
    assert report.files_read == 1 and report.written == ["val/vggish"]
    np.testing.assert_array_equal(open_split(out, "val")["vggish"][1], new)


def test_a_file_changed_just_before_packing_is_checked_again(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    path = root / "feats/vggish" / f"{LLPAnnotations(root).weak('test').ids[0]}.npy"
    np.save(path, np.full((10, 128), 2.0, dtype=np.float32))
    pack(root, out, splits=("test",), kinds=["vggish"])  # its ctime is too recent to trust
    assert pack(root, out, splits=("test",), kinds=["vggish"]).files_read == 1
    time.sleep(store.RACY_NS / 1e9)
    pack(root, out, splits=("test",), kinds=["vggish"])  # stamped now that it is old enough
    assert pack(root, out, splits=("test",), kinds=["vggish"]).files_read == 0


def test_store_of_another_format_is_rebuilt_not_read(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "store"
    pack(root, out, splits=("val",), kinds=["res152"])
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["format"] = 1  # as avparse 0.1 left it (80-frame res152 rows)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AvparseError, match="store format 1, this avparse reads format 2"):
        open_split(out, "val")
    report = pack(root, out, splits=("val",), kinds=["res152"])
    assert report.written == ["val/res152"] and report.files_read == 6
    assert open_split(out, "val")["res152"].shape == (6, 10, 2048)


def test_rows_keyed_by_ids_may_repeat_an_id(root: Path, tmp_path: Path) -> None:
    ids = LLPAnnotations(root).weak("train").ids
    rows = [ids[2], ids[0], ids[2]]
    packed = ensure_rows(root, tmp_path / "s", "mine", ["a", "b", "c"], ["vggish", "harvest_audio"],
                         num_classes=25, ids=rows)  # fmt: skip
    assert packed.filenames == ["a", "b", "c"]
    for i, cid in enumerate(rows):
        np.testing.assert_array_equal(
            packed["vggish"][i], np.load(root / "feats/vggish" / f"{cid}.npy")
        )
    assert packed["harvest_audio"].dtype == np.uint8 and packed["harvest_audio"].shape == (
        3,
        10,
        25,
    )


def test_teacher_outputs_are_packable_and_missing_ones_named(root: Path, tmp_path: Path) -> None:
    ann = LLPAnnotations(root).weak("train")
    frame_kinds = {k: f for k, f in TEACHER_KINDS.items() if not k.startswith("temporal_")}
    for kind, folder in frame_kinds.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, cid in enumerate(ann.ids):
            value = np.full((10, 25), i / 20, np.float32)
            np.save(root / folder / f"{cid}.npy", value if kind.startswith("soft") else value - 3)
    kinds = list(frame_kinds)
    packed = ensure_packed(root, tmp_path / "s", splits=("train",), kinds={"train": kinds})
    assert packed["train"]["soft_visual"][4, 0, 0] == np.float32(4 / 20)
    assert packed["train"]["scores_audio"][4, 0, 0] == np.float32(4 / 20 - 3)
    np.save(root / "CLIP/segment_soft_labels" / f"{ann.ids[1]}.npy", np.full((10, 25), 2.0))
    (root / "CLAP/segment_scores" / f"{ann.ids[3]}.npy").unlink()
    with pytest.raises(PackError) as err:
        ensure_packed(root, tmp_path / "s", splits=("train",), kinds={"train": kinds})
    assert "probabilities must lie in [0, 1]" in err.value.problems[0]
    assert f"CLAP/segment_scores/{ann.ids[3]}.npy: missing" in err.value.problems[1]
    import shutil

    shutil.rmtree(root / "CLAP/segment_soft_labels")
    with pytest.raises(PackError) as err:
        ensure_packed(root, tmp_path / "t", splits=("train",), kinds={"train": ["soft_audio"]})
    message = str(err.value)
    assert "CLAP/segment_soft_labels: folder missing" in message and "avparse harvest" in message


def test_pooled_rows_give_the_model_the_same_outputs(root: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from avparse.model.config import model_config
    from avparse.model.han import HAN

    packed = ensure_packed(root, tmp_path / "s", splits=("val",),
                           kinds={"val": ["vggish", "res152", "r2plus1d_18"]})["val"]  # fmt: skip
    ids = LLPAnnotations(root).weak("val").ids
    frames = np.stack([np.load(root / "feats/res152" / f"{c}.npy") for c in ids])
    torch.manual_seed(0)
    model = HAN(model_config("tiny", {"dropout": 0.0})).eval()
    audio, motion = (torch.from_numpy(np.array(packed[k])) for k in ("vggish", "r2plus1d_18"))
    with torch.no_grad():
        pooled = model(audio, torch.from_numpy(np.array(packed["res152"])), motion)
        full = model(audio, torch.from_numpy(frames), motion)
    for a, b in zip(pooled, full, strict=True):
        assert torch.equal(a, b)


def test_data_pack_on_an_ave_root_builds_what_the_ave_task_reads(tmp_path: Path, cli) -> None:
    pytest.importorskip("h5py")
    from avparse.data.ave import AVEAnnotations
    from avparse.synthetic import generate_ave

    root = generate_ave(tmp_path / "ave", n_train=8, n_val=3, n_test=3, seed=2)
    time.sleep(store.RACY_NS / 1e9)
    result = cli("data", "pack", root, "--no-progress")
    assert result.code == 0, result.err
    assert result.out.startswith(f"{root / 'packed_ave'}: ")
    train = open_split(root / "packed_ave", "train")
    clips = AVEAnnotations(root).split("train")
    assert train.filenames == clips.ids and train["harvest_audio"].shape == (8, 10, 28)
    np.testing.assert_array_equal(
        train["vggish"][5], np.load(root / "feats/vggish" / f"{clips.ids[5]}.npy")
    )
    again = pack(root)
    assert again.files_read == 0 and again.written == []
