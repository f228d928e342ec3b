"""Clips of any length in the packed store: ragged arrays, no padding on disk, incremental, and
the decision rule on padded predictions (issue 15, item 5)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from avparse.data import store
from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
from avparse.data.store import PackError, ensure_rows, open_split, pack_rows
from avparse.errors import AvparseError
from avparse.eval.events import decide

LENGTHS = [3, 12, 7, 1, 20]
IDS = [f"clip{i:07d}" for i in range(len(LENGTHS))]
KINDS = ["vggish", "res152", "r2plus1d_18", "harvest_audio"]


def _make_root(root: Path, lengths=LENGTHS, seed: int = 0) -> Path:
    """A tiny hand-built root of clips of different lengths (per segment: vggish (T, 128),
    res152 8 frames per segment, r2plus1d_18 (T, 512), harvests (T, 25))."""
    rng = np.random.default_rng(seed)
    for kind in ("vggish", "res152", "r2plus1d_18"):
        fk = FEATURE_KINDS[kind]
        (root / fk.folder).mkdir(parents=True, exist_ok=True)
        for cid, t in zip(IDS, lengths, strict=True):
            rows = fk.shape[0] // 10 * t
            np.save(
                root / fk.folder / f"{cid}.npy",
                rng.normal(size=(rows, fk.shape[1])).astype(np.float32),
            )
    (root / HARVEST_FOLDERS["audio"]).mkdir(parents=True, exist_ok=True)
    for cid, t in zip(IDS, lengths, strict=True):
        np.save(
            root / HARVEST_FOLDERS["audio"] / f"{cid}.npy",
            rng.integers(0, 2, (t, 25)).astype(np.uint8),
        )
    time.sleep(store.RACY_NS / 1e9)
    return root


def _expected(root: Path, kind: str, cid: str, t: int) -> np.ndarray:
    folder = HARVEST_FOLDERS["audio"] if kind == "harvest_audio" else FEATURE_KINDS[kind].folder
    src = np.load(root / folder / f"{cid}.npy")
    if kind == "res152":
        src = src.reshape(t, 8, 2048).mean(axis=1)
    return src


def test_ragged_pack_holds_every_clip_without_padding(tmp_path: Path) -> None:
    root = _make_root(tmp_path / "root")
    out = tmp_path / "store"
    report = pack_rows(root, out, "train", IDS, KINDS, num_classes=25, ids=IDS, lengths=LENGTHS)
    assert report.files_read == len(IDS) * len(KINDS)
    packed = open_split(out, "train")
    assert packed.is_ragged and packed.lengths.tolist() == LENGTHS
    assert packed.offsets.tolist() == [0, 3, 15, 22, 23, 43]
    for kind in KINDS:
        values = packed.arrays[kind]
        assert isinstance(values, np.memmap) and not values.flags.writeable
        assert values.shape[0] == sum(LENGTHS)  # on disk: no padding at all
        r = packed.ragged(kind)
        for i, (cid, t) in enumerate(zip(IDS, LENGTHS, strict=True)):
            np.testing.assert_array_equal(r[i], _expected(root, kind, cid, t))
    entry = json.loads((out / "manifest.json").read_text())["splits"]["train"]
    assert entry["lengths"] == LENGTHS and entry["arrays"]["vggish"]["ragged"] is True
    with pytest.raises(AvparseError, match="ragged"):
        packed["vggish"]
    # a padded batch from the store: the contract's Ragged.pad
    batch, mask = packed.ragged("vggish").pad([1, 3])
    assert batch.shape == (2, 12, 128) and mask.sum(axis=1).tolist() == [12, 1]


def test_ragged_repack_is_incremental_and_sees_a_new_length(tmp_path: Path) -> None:
    root = _make_root(tmp_path / "root")
    out = tmp_path / "store"
    pack_rows(root, out, "train", IDS, KINDS, num_classes=25, ids=IDS, lengths=LENGTHS)
    again = pack_rows(root, out, "train", IDS, KINDS, num_classes=25, ids=IDS, lengths=LENGTHS)
    assert again.files_read == 0 and again.written == []
    # one clip's vggish file rewritten with other values: only that file is read
    path = root / "feats/vggish" / f"{IDS[2]}.npy"
    np.save(path, np.full((7, 128), 3.0, dtype=np.float32))
    os.utime(path, ns=(1, 1))
    report = pack_rows(
        root, out, "train", IDS, ["vggish"], num_classes=25, ids=IDS, lengths=LENGTHS
    )
    assert report.files_read == 1 and report.written == ["train/vggish"]
    packed = open_split(out, "train")
    np.testing.assert_array_equal(packed.ragged("vggish")[2], np.full((7, 128), 3.0))
    np.testing.assert_array_equal(packed.ragged("vggish")[4], _expected(root, "vggish", IDS[4], 20))
    # a clip whose length changes (a longer video): its files must match the new length
    longer = [*LENGTHS[:-1], 21]
    with pytest.raises(
        PackError, match=r"clip0000004\.npy: shape \(20, 128\), expected \(21, 128\)"
    ):
        pack_rows(root, out, "train", IDS, ["vggish"], num_classes=25, ids=IDS, lengths=longer)


def test_ragged_problems_are_one_line_per_file_and_keep_the_old_array(tmp_path: Path) -> None:
    root = _make_root(tmp_path / "root")
    out = tmp_path / "store"
    pack_rows(root, out, "train", IDS, ["vggish"], num_classes=25, ids=IDS, lengths=LENGTHS)
    np.save(root / "feats/vggish" / f"{IDS[0]}.npy", np.zeros((4, 128), dtype=np.float32))
    (root / "feats/vggish" / f"{IDS[1]}.npy").unlink()
    with pytest.raises(PackError) as info:
        pack_rows(root, out, "train", IDS, ["vggish"], num_classes=25, ids=IDS, lengths=LENGTHS)
    problems = info.value.problems
    assert len(problems) == 2
    assert any(f"{IDS[1]}.npy: missing" in p for p in problems)
    assert any(f"{IDS[0]}.npy: shape (4, 128), expected (3, 128)" in p for p in problems)
    packed = open_split(out, "train")  # the array of the last clean pack is still there
    assert packed.ragged("vggish").lengths.tolist() == LENGTHS


def test_a_10_segment_split_beside_a_ragged_one_keeps_its_format(tmp_path: Path) -> None:
    root = _make_root(tmp_path / "root", lengths=[10] * len(IDS))
    out = tmp_path / "store"
    fixed = ensure_rows(root, out, "val", IDS, ["vggish"], num_classes=25, ids=IDS)
    assert not fixed.is_ragged and fixed.lengths is None and fixed["vggish"].shape == (5, 10, 128)
    ragged = ensure_rows(
        root, out, "train", IDS, ["vggish"], num_classes=25, ids=IDS, lengths=[10] * 5
    )
    assert ragged.is_ragged and ragged.arrays["vggish"].shape == (50, 128)
    np.testing.assert_array_equal(ragged.ragged("vggish").pad()[0], fixed["vggish"])
    with pytest.raises(AvparseError, match="not ragged"):
        fixed.ragged("vggish")


def test_a_kind_that_is_not_per_segment_cannot_be_ragged(tmp_path: Path) -> None:
    with pytest.raises(AvparseError, match="not per segment"):
        pack_rows(tmp_path, tmp_path / "s", "train", IDS, ["clap"], num_classes=25, lengths=LENGTHS)


def test_decide_zeroes_padded_segments_and_matches_each_clip_alone() -> None:
    rng = np.random.default_rng(1)
    lengths = np.array([4, 9, 1])
    frame = rng.uniform(size=(3, 9, 2, 5))
    video = rng.uniform(size=(3, 5))
    audio, visual = decide(frame, video, lengths=lengths)
    for i, t in enumerate(lengths):
        alone_a, alone_v = decide(frame[i : i + 1, :t], video[i : i + 1])
        np.testing.assert_array_equal(audio[i, :t], alone_a[0])
        np.testing.assert_array_equal(visual[i, :t], alone_v[0])
        assert not audio[i, t:].any() and not visual[i, t:].any()
    unmasked = decide(frame, video)
    np.testing.assert_array_equal(decide(frame, video, lengths=[9, 9, 9])[0], unmasked[0])
    with pytest.raises(ValueError, match="lengths"):
        decide(frame, video, lengths=[1, 2])
