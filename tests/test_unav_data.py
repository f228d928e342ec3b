"""UnAV-100: the vocabulary, the annotation reader (real file and every bad input), the layout's
kinds of any length and the per-file rule for them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from avparse.data.files import pool_segments, read_feature_file
from avparse.data.layout import FEATURE_KINDS, UNAV_FEATURE_RATE, task_kinds
from avparse.data.unav import UnAVAnnotations, split_name
from avparse.errors import AvparseError
from avparse.vocab import UNAV, get_vocabulary


def _plain_dense(duration: float, events: list[tuple[int, float, float]]) -> np.ndarray:
    """Section 12's rounding, one event and one segment at a time."""
    t = math.ceil(duration)
    out = np.zeros((t, len(UNAV)), dtype=bool)
    for label, start, end in events:
        for s in range(math.floor(start), min(math.ceil(end), t)):
            out[s, label] = True
    return out


def test_vocabulary_is_the_file_order(unav_root: Path):
    data = json.loads((unav_root / "unav100_annotations.json").read_text())["database"]
    seen = {a["label_id"]: a["label"] for v in data.values() for a in v["annotations"]}
    assert sorted(seen) == list(range(100))
    assert UNAV.names == [seen[i] for i in range(100)]
    assert get_vocabulary("unav") is UNAV


def test_vocabulary_prompts_in_the_llp_style():
    assert len(UNAV) == 100 and len(set(UNAV.display_names)) == 100
    for c in UNAV:
        assert c.clip_prompt.startswith("A photo of ") and c.clip_prompt.endswith(".")
        assert c.clap_prompt.startswith("This is a sound of ")
        assert c.display[:1].isupper()
        assert c.clip_threshold is None and c.clap_threshold is None
    bass = UNAV[UNAV.index("playing base guitar")]
    assert bass.display == "Playing bass guitar" and "bass guitar" in bass.clip_prompt


def test_real_file_counts_shapes_and_rounding(unav_root: Path):
    ann = UnAVAnnotations(unav_root)
    assert ann.counts() == {"train": 6489, "val": 2134, "test": 2167}
    assert len(ann) == 10790 and not ann.problems
    assert ann.videos("validation") == ann.videos("val")
    data = json.loads((unav_root / "unav100_annotations.json").read_text())["database"]
    for split in ("train", "val", "test"):
        videos, lengths = ann.videos(split), ann.lengths(split)
        assert lengths.dtype == np.int64 and lengths.min() >= 10 and lengths.max() <= 60
        weak, dense = ann.weak(split), ann.dense(split)
        assert weak.shape == (len(videos), 100) and weak.dtype == bool
        assert dense.values.dtype == bool and dense.tail == (100,)
        np.testing.assert_array_equal(dense.lengths, lengths)
        # every event covers at least one segment in the real file, so weak = any over time
        np.testing.assert_array_equal(
            weak, np.stack([dense[i].any(axis=0) for i in range(len(videos))])
        )
        for i in range(0, len(videos), 7):  # a plain loop over a seventh of the videos
            item = data[videos[i]]
            assert lengths[i] == math.ceil(item["duration"])
            events = [(a["label_id"], *a["segment"]) for a in item["annotations"]]
            np.testing.assert_array_equal(dense[i], _plain_dense(item["duration"], events))
    train = ann.videos("train")
    i = train.index("--HuBNHXu9I")  # the real video: man speaking 0-10.2, 13.1-26.2, 28.7-60 s
    on = np.flatnonzero(ann.dense("train")[i][:, UNAV.index("man speaking")])
    assert list(on) == [*range(0, 11), *range(13, 27), *range(28, 60)]


def _write(tmp_path: Path, database: object, name: str = "a.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": "unav100", "database": database}))
    return path


def _video(events=None, duration=12.5, subset="train") -> dict:
    if events is None:
        events = [{"segment": [0.5, 3.2], "label": "man speaking", "label_id": 0}]
    return {"duration": duration, "subset": subset, "annotations": events}


def test_rounding_edges_against_the_plain_loop(tmp_path: Path):
    events = [
        (0, 0.0, 1.0),  # whole seconds: segment 0 only
        (1, 0.99, 1.01),  # touches 0 and 1
        (2, 5.0, 5.0),  # zero length at a whole second: no segment
        (3, 11.6, 12.5),  # last partial segment (T = 13)
        (3, 2.0, 4.5),  # overlaps nothing else of class 3
        (4, 7.3, 7.4),  # inside one segment
    ]
    db = {
        "vid": _video(
            [{"segment": [s, e], "label": UNAV.names[c], "label_id": c} for c, s, e in events]
        ),
        "v2": _video([], duration=10, subset="test"),
    }
    ann = UnAVAnnotations(_write(tmp_path, db))
    assert list(ann.lengths("train")) == [13] and list(ann.lengths("test")) == [10]
    np.testing.assert_array_equal(ann.dense("train")[0], _plain_dense(12.5, events))
    assert not ann.dense("test")[0].any() and not ann.weak("test").any()
    assert ann.weak("train")[0, :5].all()  # the zero-length event still names its class
    assert len(ann.dense("val")) == 0 and ann.weak("val").shape == (0, 100)


@pytest.mark.parametrize(
    ("video", "message"),
    [
        (_video([{"segment": [1, 2], "label": "woman speaking", "label_id": 0}]),
         "video 'bad': annotations[0].label 'woman speaking' does not match label_id 0"),
        (_video([{"segment": [1, 13], "label": "man speaking", "label_id": 0}]),
         "video 'bad': annotations[0].segment [1, 13] is outside [0, 12.5]"),
        (_video([{"segment": [-0.5, 2], "label": "man speaking", "label_id": 0}]),
         "video 'bad': annotations[0].segment [-0.5, 2] is outside"),
        (_video([{"segment": [3, 2], "label": "man speaking", "label_id": 0}]),
         "video 'bad': annotations[0].segment [3, 2] is reversed"),
        (_video([{"segment": [1], "label": "man speaking", "label_id": 0}]),
         "video 'bad': annotations[0].segment [1] is not [start, end]"),
        (_video([{"segment": [1, 2], "label": "man speaking"}]),
         "video 'bad': annotations[0]: missing key 'label_id'"),
        (_video([{"segment": [1, 2], "label": "man speaking", "label_id": 100}]),
         "video 'bad': annotations[0].label_id 100 is outside 0..99"),
        (_video([{"segment": [1, 2], "label": "man speaking", "label_id": "0"}]),
         "video 'bad': annotations[0].label_id '0' is not a whole number"),
        ({"duration": 10, "annotations": []}, "video 'bad': missing key 'subset'"),
        ({"subset": "train", "annotations": []}, "video 'bad': missing key 'duration'"),
        (_video(duration=-1), "video 'bad': duration -1 is not a positive number"),
        (_video(subset="dev"), "video 'bad': subset 'dev' is not train, validation or test"),
        ({"duration": 10, "subset": "train", "annotations": {}},
         "video 'bad': annotations is not a list"),
        ([1, 2], "video 'bad': not an object"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_video_and_field(tmp_path: Path, video, message: str):
    path = _write(tmp_path, {"good": _video(), "bad": video})
    with pytest.raises(AvparseError) as err:
        UnAVAnnotations(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text
    lenient = UnAVAnnotations(path, strict=False)  # the data check's mode: all problems, good rest
    assert len(lenient.problems) == 1 and message in lenient.problems[0]
    assert lenient.videos("train") == ["good"]


def test_every_problem_is_collected(tmp_path: Path):
    bad = _video([{"segment": [3, 2], "label": "x", "label_id": 0},
                  {"segment": [1, 99], "label": "man speaking", "label_id": 0}])  # fmt: skip
    path = _write(tmp_path, {"a": bad, "b": _video(subset="nope"), "c": _video()})
    ann = UnAVAnnotations(path, strict=False)
    assert len(ann.problems) == 3 and ann.videos("train") == ["c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"version": 1}', "no 'database' object"),
        ("[]", "no 'database'"),
    ],
)
def test_not_an_annotation_file(tmp_path: Path, text: str, message: str):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(AvparseError, match=message):
        UnAVAnnotations(path)
    with pytest.raises(AvparseError, match="missing"):
        UnAVAnnotations(tmp_path / "nothing.json")
    with pytest.raises(AvparseError, match="unknown UnAV-100 split"):
        split_name("dev")


def test_layout_kinds_of_any_length():
    llp = task_kinds("llp")
    assert set(llp) == {"vggish", "res152", "r2plus1d_18", "clip", "clap"}
    assert all(not k.any_length for k in llp.values())
    assert FEATURE_KINDS["clip"].shape == (10, 768) and FEATURE_KINDS["res152"].packed_shape == (
        10,
        2048,
    )
    seg = FEATURE_KINDS["clip_segments"]
    assert (seg.folder, seg.shape, seg.any_length) == (
        "feats_CLIP/segment_feats",
        (None, 768),
        True,
    )
    assert FEATURE_KINDS["clap_segments"].folder == "feats_CLAP/segment_feats"
    assert FEATURE_KINDS["clap_segments"].dim == 512
    rgb = FEATURE_KINDS["unav_i3d_rgb"]
    assert rgb.file_name("--HuBNHXu9I") == "--HuBNHXu9I_rgb.npy" and rgb.rate == 25 / 8
    assert {FEATURE_KINDS[k].dim for k in ("unav_i3d_rgb", "unav_i3d_flow")} == {1024}
    with pytest.raises(AvparseError, match="any length"):
        _ = seg.frames


def _save(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def test_per_file_rule_for_any_length(tmp_path: Path):
    seg = _save(tmp_path / "s.npy", np.zeros((13, 768), np.float32))
    assert read_feature_file(seg, "clip_segments", length=13)[1] is None
    assert read_feature_file(seg, "clip_segments", length=12)[1] == (
        "shape (13, 768), expected (12, 768)"
    )
    assert read_feature_file(seg, "clip_segments")[1] is None  # no length known: any rows
    assert "expected (rows, 512)" in str(read_feature_file(seg, "clap_segments")[1])
    # published rows at 25/8 per second: a 40-s video has about 123 rows
    for rows, ok in ((123, True), (125, True), (118, True), (100, False), (140, False)):
        f = _save(tmp_path / f"v{rows}.npy", np.zeros((rows, 128), np.float32))
        problem = read_feature_file(f, "unav_vggish", length=40, duration=40.0)[1]
        assert (problem is None) == ok, (rows, problem)
    f = _save(tmp_path / "long.npy", np.zeros((int(60 * UNAV_FEATURE_RATE) - 10, 1024), np.float32))
    assert read_feature_file(f, "unav_i3d_flow", length=60, duration=60.0)[1] is None  # 10 %
    harvest = _save(tmp_path / "h.npy", np.zeros((13, 100), np.uint8))
    assert read_feature_file(harvest, "harvest_audio", num_classes=100, length=13)[1] is None
    assert "expected (10, 100)" in str(
        read_feature_file(harvest, "harvest_audio", num_classes=100)[1]
    )


def test_pool_segments_is_adaptive_average_pooling():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for rows, length in ((187, 60), (29, 10), (3, 10), (10, 10)):
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        ref = torch.nn.functional.adaptive_avg_pool1d(torch.from_numpy(x.T)[None], length)[0].T
        np.testing.assert_allclose(pool_segments(x, length), ref.numpy(), atol=1e-6)
    with pytest.raises(ValueError):
        pool_segments(np.zeros((0, 3)), 4)
