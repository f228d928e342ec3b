"""``avparse score``: scoring prediction files, its messages, and bad inputs through the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from avparse.data.llp import LLPAnnotations, write_dense_tsv
from avparse.eval.metrics import SCORE_KEYS, llp_scores
from avparse.eval.score import format_per_class, score_files
from avparse.vocab import LLP

HEADER = "filename\tonset\toffset\tevent_labels\n"
CLIPS = ["clipAAAAAAA_0_10", "clipBBBBBBB_5_15", "clipCCCCCCC_1_11"]


@pytest.fixture
def ann_root(tmp_path: Path) -> Path:
    """A tiny annotation folder: three test clips, dense audio / visual labels."""
    root = tmp_path / "llp"
    root.mkdir()
    (root / "AVVP_test_pd.csv").write_text(
        f"filename\tevent_labels\n{CLIPS[0]}\tDog,Speech\n{CLIPS[1]}\tCar\n{CLIPS[2]}\tCat\n"
    )
    (root / "AVVP_val_pd.csv").write_text("filename\tevent_labels\nvalclipXXXX_0_10\tDog\n")
    (root / "AVVP_eval_audio.csv").write_text(
        HEADER
        + f"{CLIPS[0]}\t0\t4\tDog\n{CLIPS[0]}\t6\t10\tSpeech\n{CLIPS[1]}\t2\t5\tCar\n"
        + f"{CLIPS[1]}\t9\t0\tCar\n"  # reversed, as in the real file: marks nothing
        + "valclipXXXX_0_10\t0\t10\tDog\n"
    )
    (root / "AVVP_eval_visual.csv").write_text(
        HEADER + f"{CLIPS[0]}\t0\t2\tDog\n{CLIPS[2]}\t0\t10\tCat\n"
    )
    return root


def _write(path: Path, body: str) -> Path:
    path.write_text(HEADER + body)
    return path


def test_scores_hand_made_files_and_reports_outside_rows(ann_root: Path, tmp_path: Path, cli):
    audio = _write(
        tmp_path / "a.tsv",
        f"{CLIPS[0]}\t0\t2\tDog\n{CLIPS[0]}\t6\t10\tSpeech\n"
        "elsewhere12_0_10\t0\t3\tDog\nelsewhere12_0_10\t4\t5\tCat\n",
    )
    visual = _write(tmp_path / "v.tsv", f"{CLIPS[2]}\t0\t10\tCat\nelsewhere12_0_10\t0\t1\tDog\n")
    out = tmp_path / "out" / "scores.json"
    result = cli(
        "score", "--annotations", ann_root, "--audio", audio, "--visual", visual, "--json", out
    )
    assert result.code == 0, result.err
    err_lines = result.err.strip().splitlines()
    assert len(err_lines) == 2
    assert (
        "note:" in err_lines[0]
        and "AVVP_eval_audio.csv:5: onset 9 is after offset 0" in (err_lines[0])
    )
    assert (
        "warning: ignored 3 predicted events (audio 2, visual 1) of 1 clip outside the test"
        in (err_lines[1])
    )
    assert "'elsewhere12_0_10'" in err_lines[1]
    assert "LLP test: 3 clips, 2 with predicted events" in result.out
    data = json.loads(out.read_text())
    assert list(data) == list(SCORE_KEYS)
    # by hand: audio clip0 Dog 2*2/(4+2)=2/3, Speech 1 -> 5/6; clip1 Car FN -> 0; clip2 none -> 1
    assert data["seg_a"] == pytest.approx(100 * (5 / 6 + 0 + 1) / 3)
    # event level: clip0 Dog [0,2) vs [0,4) IoU 0.5 -> TP, Speech TP -> 1
    assert data["evt_a"] == pytest.approx(100 * (1 + 0 + 1) / 3)
    # visual: clip0 Dog missed -> 0; clip1 nothing -> 1; clip2 Cat exact -> 1
    assert data["seg_v"] == pytest.approx(200 / 3)
    assert "segment" in result.out and f"{data['seg_a']:.2f}" in result.out


def test_per_class_output_and_json(ann_root: Path, tmp_path: Path, cli):
    audio = _write(tmp_path / "a.tsv", f"{CLIPS[0]}\t0\t4\tDog\n")
    visual = _write(tmp_path / "v.tsv", "")
    out = tmp_path / "s.json"
    result = cli(
        "score",
        "--annotations",
        ann_root,
        "--split",
        "test",
        "--audio",
        audio,
        "--visual",
        visual,
        "--per-class",
        "--json",
        out,
    )
    assert result.code == 0, result.err
    assert "per-class F" in result.out
    dog = next(line for line in result.out.splitlines() if line.startswith("Dog "))
    assert "100.0" in dog
    helicopter = next(line for line in result.out.splitlines() if line.startswith("Helicopter"))
    assert set(helicopter.split()[1:9]) == {"-"}
    data = json.loads(out.read_text())
    rows = {r["class"]: r for r in data["per_class"]}
    assert rows["Dog"]["seg_a"] == 100.0 and rows["Dog"]["true_segments_a"] == 4
    assert rows["Helicopter"]["seg_a"] is None and len(rows) == 25


def test_val_split_and_clip_without_rows(ann_root: Path, tmp_path: Path):
    empty = _write(tmp_path / "e.tsv", "")
    report = score_files(ann_root, "val", empty, empty)
    assert report.num_clips == 1 and report.clips_with_predictions == 0
    assert report.scores["seg_a"] == 0.0 and report.scores["seg_v"] == 100.0
    assert report.warning() is None


@pytest.mark.parametrize(
    ("body", "message", "line"),
    [
        (f"{CLIPS[0]}\t0\t3\n", "malformed row", 3),
        (f"{CLIPS[0]}\t0\t3\tNope\n", "unknown class 'Nope'", 3),
        (f"{CLIPS[0]}\t5\t3\tDog\n", "onset 5 is after offset 3", 3),
        (f"{CLIPS[0]}\t0\t11\tDog\n", "outside [0, 10]", 3),
        (f"{CLIPS[0]}\t-1\t3\tDog\n", "outside [0, 10]", 3),
        (f"{CLIPS[0]}\t0\t1e308\tDog\n", "offset 1e308 is outside [0, 10]", 3),  # not 309 digits
        (f"../{CLIPS[0]}\t0\t3\tDog\n", "unsafe filename", 3),
        (f"{CLIPS[0]}\t0.5\t3\tDog\n", "whole second", 3),
    ],
)
def test_bad_prediction_rows_exit_2_naming_file_and_line(
    ann_root: Path, tmp_path: Path, cli, body: str, message: str, line: int
):
    good = _write(tmp_path / "good.tsv", "")
    bad = _write(tmp_path / "bad.tsv", f"{CLIPS[1]}\t0\t1\tCar\n" + body)
    for flag_bad, flag_good in (("--audio", "--visual"), ("--visual", "--audio")):
        result = cli("score", "--annotations", ann_root, flag_bad, bad, flag_good, good)
        assert result.code == 2
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        assert f"{bad}:{line}:" in lines[0] and message in lines[0]
        assert result.out == ""


def test_missing_file_and_missing_column_exit_2(ann_root: Path, tmp_path: Path, cli):
    good = _write(tmp_path / "good.tsv", "")
    result = cli(
        "score", "--annotations", ann_root, "--audio", tmp_path / "no.tsv", "--visual", good
    )
    assert result.code == 2 and "no.tsv: file not found" in result.err
    assert len(result.err.strip().splitlines()) == 1
    cols = tmp_path / "cols.tsv"
    cols.write_text("filename\tonset\tevent_labels\nx\t0\tDog\n")
    result = cli("score", "--annotations", ann_root, "--audio", good, "--visual", cols)
    assert result.code == 2 and f"{cols}:1: missing column 'offset'" in result.err
    result = cli("score", "--annotations", tmp_path / "nowhere", "--audio", good, "--visual", good)
    assert result.code == 2 and "data root not found" in result.err
    result = cli(
        "score", "--annotations", ann_root, "--audio", good, "--visual", good, "--split", "train"
    )
    assert result.code == 2 and "invalid choice" in result.err


def test_real_test_split_perfect_and_noisy_predictions(llp_root: Path, tmp_path: Path):
    ann = LLPAnnotations(llp_root)
    names = ann.weak("test").filenames
    true_a, true_v = ann.dense("test")
    write_dense_tsv(tmp_path / "a.tsv", names, true_a, LLP)
    write_dense_tsv(tmp_path / "v.tsv", names, true_v, LLP)
    report = score_files(llp_root, "test", tmp_path / "a.tsv", tmp_path / "v.tsv")
    assert report.scores == dict.fromkeys(SCORE_KEYS, 100.0)
    assert len(report.notes) == 1 and "AVVP_eval_audio.csv" in report.notes[0]
    rng = np.random.default_rng(5)
    pred_a = true_a ^ (rng.random(true_a.shape) < 0.01)
    pred_v = true_v & (rng.random(true_v.shape) < 0.9)
    write_dense_tsv(tmp_path / "a.tsv", names, pred_a, LLP)
    write_dense_tsv(tmp_path / "v.tsv", names, pred_v, LLP)
    report = score_files(llp_root, "test", tmp_path / "a.tsv", tmp_path / "v.tsv")
    want = llp_scores(pred_a, pred_v, true_a, true_v)
    assert report.scores == pytest.approx(want, abs=1e-12)
    assert all(0 < v < 100 for v in report.scores.values())
    assert "Speech" in format_per_class(report.per_class)


def test_whole_process_imports_no_torch_or_pandas(ann_root: Path, tmp_path: Path):
    import subprocess

    good = _write(tmp_path / "good.tsv", f"{CLIPS[0]}\t0\t4\tDog\n")
    code = (
        "import sys\n"
        "from avparse.cli.main import main\n"
        f"rc = main(['score', '--annotations', {str(ann_root)!r}, '--audio', {str(good)!r},"
        f" '--visual', {str(good)!r}])\n"
        # nor the writers' helpers (secrets, hashlib: OpenSSL), which scoring without --json skips
        "heavy = sorted(m for m in ('torch', 'pandas', 'transformers', 'av', 'secrets', 'hashlib')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert "HEAVY [] 0" in proc.stdout, proc.stdout + proc.stderr


def test_whole_process_bad_input_is_one_line_and_exit_2(ann_root: Path, tmp_path: Path):
    from conftest import run_subprocess

    bad = _write(tmp_path / "bad.tsv", f"{CLIPS[0]}\t0\t3\tNope\n")
    result = run_subprocess("score", "--annotations", ann_root, "--audio", bad, "--visual", bad)
    assert result.code == 2
    assert result.err.strip() == f"avparse score: error: {bad}:2: unknown class 'Nope'"


def test_predictions_named_by_clip_id_get_a_hint(ann_root: Path, tmp_path: Path):
    audio = _write(tmp_path / "a.tsv", f"{CLIPS[0][:11]}\t0\t4\tDog\n")
    empty = _write(tmp_path / "e.tsv", "")
    report = score_files(ann_root, "test", audio, empty)
    warning = report.warning()
    assert warning is not None and "1 predicted event (audio 1) of 1 clip" in warning
    assert f"{CLIPS[0][:11]!r} is a clip id: predictions must name clips by their full" in warning
    assert report.clips_with_predictions == 0


def test_intervals_flag(ann_root: Path, tmp_path: Path, cli):
    audio = _write(tmp_path / "a.tsv", f"{CLIPS[0]}\t0\t2\tDog\n{CLIPS[2]}\t0\t9\tCat\n")
    out = tmp_path / "ci.json"
    result = cli(
        "score", "--annotations", ann_root, "--audio", audio, "--visual", audio, "--ci",
        "--json", out,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "95% interval" in result.out
    data = json.loads(out.read_text())
    assert data["intervals"]["level"] == 0.95
    for key in SCORE_KEYS:
        lo, hi = data["intervals"][key]
        assert lo <= data[key] <= hi
