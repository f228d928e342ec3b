"""The vocabulary module and the LLP annotation readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avparse.data.llp import (
    AnnotationError,
    LLPAnnotations,
    clip_id,
    read_dense,
    read_dense_rows,
    read_weak,
    runs,
    write_dense_tsv,
    write_weak_tsv,
)
from avparse.errors import AvparseError
from avparse.vocab import AVE, LLP, Vocabulary, load_thresholds


def test_llp_vocabulary_matches_reference():
    assert len(LLP) == 25
    assert LLP.names[0] == "Speech" and LLP.names[-1] == "Clapping"
    assert LLP.index("Chicken_rooster") == 12
    assert LLP[20].clip_prompt == "A photo of a acoustic guiter."  # published typo kept
    assert LLP[12].clap_prompt == "This is a sound of chicken, rooster"
    assert LLP.thresholds("visual")[:4] == [20, 15, 18, 14]
    assert LLP.thresholds("audio")[-5:] == [-1, 2, 3, 3, 0]
    assert len(AVE) == 28 and AVE[0].name == "Church bell"


def test_ave_thresholds_must_be_calibrated():
    with pytest.raises(AvparseError, match="calibrate"):
        AVE.thresholds("audio")


def test_open_vocabulary_and_thresholds_file(tmp_path: Path):
    vocab = Vocabulary.from_names(["dog barking", " engine ", ""])
    assert vocab.names == ["dog barking", "engine"]
    assert vocab[1].clip_prompt == "A photo of an engine."
    f = tmp_path / "t.json"
    f.write_text('{"visual": {"dog barking": 21, "engine": 19}, "audio": {"engine": 3}}')
    with pytest.raises(AvparseError, match="no audio threshold"):
        load_thresholds(f, vocab)
    f.write_text('{"visual": {"Dog": 21}}')
    out = load_thresholds(f, LLP)
    assert out.thresholds("visual")[3] == 21 and out.thresholds("visual")[0] == 20
    assert Vocabulary.from_dict(out.to_dict()) == out


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("a_0_10\t0\t3\n", "malformed row"),
        ("a_0_10\t0\t3\tNope\n", "unknown class 'Nope'"),
        ("a_0_10\t5\t3\tDog\n", "onset 5 is after offset 3"),
        ("a_0_10\t0\t11\tDog\n", "outside"),
        ("a_0_10\t-1\t3\tDog\n", "outside"),
        ("a_0_10\t0.5\t3\tDog\n", "whole second"),
        ("a_0_10\tx\t3\tDog\n", "not a number"),
        ("../etc_0_10\t0\t3\tDog\n", "unsafe filename"),
        ("a/b_0_10\t0\t3\tDog\n", "unsafe filename"),
    ],
)
def test_dense_errors_name_file_and_line(tmp_path: Path, body: str, message: str):
    path = _write(
        tmp_path / "d.csv", "filename\tonset\toffset\tevent_labels\nok_0_10\t0\t1\tDog\n" + body
    )
    with pytest.raises(AnnotationError, match=message) as info:
        read_dense_rows(path)
    assert str(info.value).startswith(f"{path}:3:")


def test_missing_column_and_missing_file(tmp_path: Path):
    path = _write(tmp_path / "d.csv", "filename\tonset\tevent_labels\n")
    with pytest.raises(AnnotationError, match=r":1: missing column 'offset'"):
        read_dense_rows(path)
    with pytest.raises(AnnotationError, match="file not found"):
        read_weak(tmp_path / "nope.csv")


def test_dense_matrix_semantics(tmp_path: Path):
    path = _write(
        tmp_path / "d.csv",
        "filename\tonset\toffset\tevent_labels\n"
        "clipAAAAAAA_0_10\t0\t3\tDog\n"
        "clipAAAAAAA_0_10\t9\t9\tSpeech\n"  # zero length: marks nothing
        "clipAAAAAAA_0_10\t8\t10\tSpeech\n"
        "short_0_10\t0\t10\tCat\n",  # in no split: ignored
    )
    dense = read_dense(path, ["clipAAAAAAA_0_10", "other_0_10"])
    assert dense.shape == (2, 10, 25)
    assert dense[0, :, 3].tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert dense[0, :, 0].tolist() == [0] * 8 + [1, 1]
    assert dense.sum() == 5


def test_real_llp_files_load(llp_root: Path):
    ann = LLPAnnotations(llp_root)
    sizes = {s: len(ann.weak(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 10000, "val": 649, "test": 1200}
    train = ann.weak("train")
    assert "AP0061o0Nvk_101.8_111.8" in train.filenames
    assert clip_id("AP0061o0Nvk_101.8_111.8") == "AP0061o0Nvk"
    a, v = ann.dense("test")
    assert len(ann.dense_quirks()) == 1 and "onset 9 is after offset 0" in ann.dense_quirks()[0]
    assert a.shape == v.shape == (1200, 10, 25)
    assert a.any() and v.any()
    # dense rows of clips outside val/test are never scored
    assert (ann.dense("val")[0].sum() + a.sum()) < 10 * 4131


# --- the fast plain-split path and the careful csv path agree ------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "a_0_10\t0\t3\tDog\nb_0_10\t2\t2\tCat\n",
        "a_0_10\t0\t3\tDog,Speech\nb_0_10\t1\t4\t Cat \n",  # several classes, spaces
        "a_0_10\t0\t3\tDog\n\nb_0_10\t1\t4\tCat\n",  # blank line inside
        "a_0_10\t0\t3\tDog\r\nb_0_10\t1\t4\tCat\r\n",  # CRLF
        'a_0_10\t0\t3\t"Dog,Cat"\n',  # quoted cell
        "a_0_10\t3.0\t+4\tDog\n",  # numbers that need float parsing
        "a_0_10\t9\t0\tDog\nb_0_10\t0\t10\tCat,Dog\n",  # reversed row (accepted as a quirk)
        "",  # header only
        "a_0_10\t0\t3\tDog",  # no final newline
        "\u00fcber_0_10\t0\t3\tDog\nb\u00a0_0_10\t1\t2\tCat\n",  # non-ASCII, no-break space
        "a_0_10\t0\t3\tDog\n  \n",  # a line of spaces
        "a_0_10\t0\t3\tDog\tspare\n",  # one field too many: an error on both paths
        "\ufeff",  # a byte-order mark before the header (written by some editors)
    ],
)
def test_fast_and_careful_dense_readers_agree(tmp_path: Path, body: str):
    from avparse.data import llp

    header = "filename\tonset\toffset\tevent_labels\n"
    if body == "\ufeff":
        header, body = body + header, "a_0_10\t0\t3\tDog\n"
    path = _write(tmp_path / "d.csv", header + body)
    try:
        careful = llp._careful_dense(path, LLP, "ignore")
    except AnnotationError:
        assert llp._fast_dense(path, LLP, "ignore") is None
        return
    fast = llp._fast_dense(path, LLP, "ignore")
    public = read_dense_rows(path, reversed_rows="ignore")
    for got in (public, fast) if fast is not None else (public,):
        assert got.filenames == careful.filenames
        assert got.classes.tolist() == careful.classes.tolist()
        assert got.onsets.tolist() == careful.onsets.tolist()
        assert got.offsets.tolist() == careful.offsets.tolist()
        assert got.quirks == careful.quirks


def test_fast_path_is_taken_for_plain_files_and_refuses_what_careful_refuses(tmp_path: Path):
    from avparse.data import llp

    path = _write(
        tmp_path / "d.csv",
        "filename\tonset\toffset\tevent_labels\na_0_10\t0\t3\tDog\nb_0_10\t9\t0\tCat\n",
    )
    rows = llp._fast_dense(path, LLP, "ignore")
    assert rows is not None and rows.quirks == [
        f"{path}:3: onset 9 is after offset 0 (marks nothing, as in the published evaluation)"
    ]
    assert llp._fast_dense(path, LLP, "error") is None  # the careful path raises the error
    with pytest.raises(AnnotationError, match=r":3: onset 9 is after offset 0$"):
        read_dense_rows(path)
    for unsafe in ("..", ".", "x\x01y", "a..b"):
        _write(path, f"filename\tonset\toffset\tevent_labels\n{unsafe}\t0\t3\tDog\n")
        assert llp._fast_dense(path, LLP, "error") is None
        with pytest.raises(AnnotationError, match="unsafe filename"):
            read_dense_rows(path)


def test_fast_path_reads_columns_in_any_order(tmp_path: Path):
    from avparse.data import llp

    path = _write(
        tmp_path / "d.csv",
        "event_labels\tnote\toffset\tfilename\tonset\nDog\tx\t3\ta_0_10\t1\nCat\t\t10\tb_0_10\t0\n",
    )
    rows = llp._fast_dense(path, LLP, "error")
    assert rows is not None and rows.filenames == ["a_0_10", "b_0_10"]
    assert rows.onsets.tolist() == [1, 0] and rows.offsets.tolist() == [3, 10]
    assert rows.classes.tolist() == [3, 4]


def test_fast_and_careful_weak_readers_agree(tmp_path: Path):
    from avparse.data import llp

    path = _write(tmp_path / "w.csv", "filename\tevent_labels\na_0_10\tDog,Speech\nb_0_10\tCat\n")
    assert llp._fast_weak(path, LLP) is not None
    weak = read_weak(path)
    assert weak.filenames == ["a_0_10", "b_0_10"]
    assert np.flatnonzero(weak.labels[0]).tolist() == [0, 3] and weak.labels[1, 4]
    assert llp._careful_weak(path, LLP) == llp._fast_weak(path, LLP)
    _write(path, "filename\tevent_labels\na_0_10\tDog\na_0_10\tCat\n")
    with pytest.raises(
        AnnotationError, match=r":3: duplicate filename 'a_0_10' \(first on line 2\)"
    ):
        read_weak(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("[1, 2]", "must be a JSON object"), ("{not json", "not a readable JSON thresholds file")],
)
def test_bad_thresholds_file_is_one_line(tmp_path: Path, text: str, message: str):
    f = tmp_path / "t.json"
    f.write_text(text)
    with pytest.raises(AvparseError, match=message) as info:
        load_thresholds(f, LLP)
    assert "\n" not in str(info.value) and str(f) in str(info.value)


def test_writers_round_trip_through_the_readers(tmp_path: Path):
    rng = np.random.default_rng(3)
    names = [f"clip{i:07d}_{i}" for i in range(6)]
    weak = rng.random((6, len(LLP))) < 0.2
    weak[np.arange(6), rng.integers(0, len(LLP), 6)] = True
    write_weak_tsv(tmp_path / "weak.tsv", names, weak)
    back = read_weak(tmp_path / "weak.tsv")
    assert back.filenames == names and (back.labels == weak).all()
    dense = rng.random((6, 10, len(LLP))) < 0.1
    rows = write_dense_tsv(tmp_path / "dense.tsv", names, dense)
    assert rows == len(runs(dense))
    assert (read_dense(tmp_path / "dense.tsv", names) == dense).all()


def test_weak_writer_refuses_an_untagged_clip(tmp_path: Path):
    labels = np.zeros((2, len(LLP)), dtype=bool)
    labels[0, 3] = True
    with pytest.raises(ValueError, match="'b' has no tag"):
        write_weak_tsv(tmp_path / "w.tsv", ["a", "b"], labels)
    assert not (tmp_path / "w.tsv").exists()


def test_a_bad_byte_is_reported_on_its_line(tmp_path: Path):
    path = tmp_path / "weak.tsv"
    path.write_bytes(b"filename\tevent_labels\nclip0000001\tSpeech\nclip0000002\tDo\xffg\n")
    with pytest.raises(AnnotationError) as err:
        read_weak(path)
    assert str(err.value) == f"{path}:3: not UTF-8 text (byte 0xff at column 15)"
    dense = tmp_path / "dense.tsv"
    dense.write_bytes(b"filename\tonset\toffset\tevent_labels\n\xfe\t0\t1\tDog\n")
    with pytest.raises(AnnotationError, match=r"dense.tsv:2: not UTF-8 text \(byte 0xfe"):
        read_dense_rows(dense)
