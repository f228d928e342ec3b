"""``avparse data check``: annotation files, folders, per-file validation, report and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avparse.data.agreement import HarvestMismatchError, outside_share, refuse_outside
from avparse.data.check import check_root, format_report
from avparse.data.files import validate_feature_file
from avparse.data.layout import FEATURE_KINDS, HARVEST_FOLDERS
from avparse.data.llp import LLPAnnotations


@pytest.fixture(scope="session")
def clean_root(tmp_path_factory) -> Path:
    from avparse.synthetic import generate_llp

    root = tmp_path_factory.mktemp("synthetic") / "root"
    return generate_llp(root, n_train=8, n_val=3, n_test=3, features="valor++", seed=3)


@pytest.fixture
def root(clean_root: Path, tmp_path: Path) -> Path:
    """A private copy of the clean root that a test may damage."""
    return Path(shutil.copytree(clean_root, tmp_path / "root"))


def _ids(root: Path, split: str) -> list[str]:
    name = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}[split]
    return [line.split("\t")[0][:11] for line in (root / name).read_text().splitlines()[1:]]


def test_clean_root_passes(clean_root: Path, cli, tmp_path: Path):
    report = check_root(clean_root)
    assert report.ok, report.problems()
    by_folder = {f.folder: f for f in report.folders}
    assert not by_folder["feats/vggish"].exists and by_folder["CLIP/features"].exists
    assert by_folder["CLIP/features"].splits["train"].present == 8
    assert by_folder[HARVEST_FOLDERS["audio"]].splits["test"].present == 3
    out = tmp_path / "report.json"
    result = cli("data", "check", clean_root, "--json", out, "--no-progress")
    assert result.code == 0, result.out + result.err
    assert "OK: no problems found" in result.out
    assert "CLAP/features" in result.out and "(absent)" in result.out
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["problems"] == []
    assert data["folders"][3]["splits"]["val"]["present"] == 3


def test_damaged_files_are_found_and_named(root: Path, cli):
    train, val = _ids(root, "train"), _ids(root, "val")
    clip = root / FEATURE_KINDS["clip"].folder
    clap = root / FEATURE_KINDS["clap"].folder
    motion = root / FEATURE_KINDS["r2plus1d_18"].folder
    harvest_a = root / HARVEST_FOLDERS["audio"]
    x = np.load(clip / f"{train[0]}.npy")
    x[3, 5] = np.inf
    np.save(clip / f"{train[0]}.npy", x)  # non-finite
    np.save(clip / f"{train[1]}.npy", np.zeros((10, 767), np.float32))  # shape
    np.save(clip / f"{val[0]}.npy", np.zeros((10, 768), np.int32))  # dtype
    (clap / f"{train[2]}.npy").unlink()  # missing
    np.save(clap / "notAnyClip0.npy", np.zeros((64, 768), np.float32))  # extra
    np.save(clap / f"{train[6]}_10_20.npy", np.zeros((64, 768), np.float32))  # named by filename
    data = (motion / f"{train[3]}.npy").read_bytes()
    (motion / f"{train[3]}.npy").write_bytes(data[: len(data) // 2])  # truncated
    (motion / f"{train[4]}.npy").write_bytes(b"not an array at all")  # unreadable
    np.save(harvest_a / f"{train[5]}.npy", np.full((10, 25), 0.5, np.float32))  # not 0/1
    (harvest_a / f"{val[1]}.npy").unlink()  # harvests of val are optional

    report = check_root(root)
    problems = report.problems()
    joined = "\n".join(problems)
    assert len(problems) == 7, joined
    assert f"CLIP/features/{train[0]}.npy: 1 non-finite value (NaN or inf)" in joined
    assert f"CLIP/features/{train[1]}.npy: shape (10, 767), expected (10, 768)" in joined
    assert f"CLIP/features/{val[0]}.npy: dtype int32, expected a floating dtype" in joined
    assert f"CLAP/features/{train[2]}.npy: missing (train)" in joined
    assert f"feats/r2plus1d_18/{train[3]}.npy: truncated: " in joined
    assert f"feats/r2plus1d_18/{train[4]}.npy: not a readable .npy file" in joined
    assert f"{HARVEST_FOLDERS['audio']}/{train[5]}.npy: harvest values must be 0 or 1" in joined
    folders = {f.folder: f for f in report.folders}
    assert folders["CLAP/features"].extra == sorted(["notAnyClip0.npy", f"{train[6]}_10_20.npy"])
    assert any(
        "CLAP/features: 1 file such as" in n and " is named by more" in n for n in report.notes
    )
    assert folders[HARVEST_FOLDERS["audio"]].splits["val"].missing == [val[1]]

    text = format_report(report, show=3)
    assert "7 problems:" in text and "... and 4 more" in text
    none_listed = format_report(report, show=0)
    assert "7 problems:" in none_listed and "... and 7 more" in none_listed
    assert "... and 8 more" not in format_report(report, show=-1)  # was: 6 listed, "8 more"
    assert "* allowed: harvests are needed for the train split only" in text
    result = cli("data", "check", root, "--no-progress")
    assert result.code == 1

    quick = check_root(root, quick=True)
    quick_text = "\n".join(quick.problems())
    assert len(quick.problems()) == 5, quick_text  # values (inf, 0.5) are not read
    assert f"{train[3]}.npy: truncated" in quick_text
    assert "non-finite" not in quick_text and "0 or 1" not in quick_text


def test_annotation_problems(root: Path):
    (root / "AVVP_test_pd.csv").unlink()
    train = (root / "AVVP_train.csv").read_text().splitlines()
    (root / "AVVP_train.csv").write_text("\n".join([*train, "broken_row_without_tab"]) + "\n")
    report = check_root(root)
    problems = report.problems()
    assert "AVVP_test_pd.csv: missing" in problems
    assert any(
        p.startswith(f"{root / 'AVVP_train.csv'}:{len(train) + 1}: malformed row") for p in problems
    )
    assert report.annotations["AVVP_val_pd.csv"] is None


def test_full_file_compared_with_the_splits(root: Path):
    full = (root / "AVVP_dataset_full.csv").read_text().splitlines()
    (root / "AVVP_dataset_full.csv").write_text("\n".join(full[:-1]) + "\n")
    report = check_root(root, quick=True)
    assert report.ok
    assert "AVVP_dataset_full.csv: clips differ from the union of train, val and test" in (
        report.notes
    )
    (root / "AVVP_dataset_full.csv").unlink()
    assert check_root(root, quick=True).ok


def test_clip_ids_shared_by_two_splits(root: Path):
    val_first = (root / "AVVP_val_pd.csv").read_text().splitlines()[1]
    name, labels = val_first.split("\t")
    with open(root / "AVVP_test_pd.csv", "a") as fh:
        fh.write(f"{name[:11]}_99_109\t{labels}\n")
    problems = check_root(root, quick=True).problems()
    assert any("is also in val: their feature files would collide" in p for p in problems)


def test_validate_feature_file_rules(tmp_path: Path):
    def save(name: str, array) -> Path:
        path = tmp_path / name
        np.save(path, array)
        return path

    ok = save("ok.npy", np.zeros((10, 128), np.float16))
    assert validate_feature_file(ok, "vggish") is None
    assert validate_feature_file(ok, "vggish", quick=True) is None
    assert validate_feature_file(tmp_path / "none.npy", "vggish") == "missing"
    for dtype in (bool, np.uint8, np.float64):
        path = save(f"h_{np.dtype(dtype).name}.npy", np.eye(10, 25, dtype=dtype))
        assert validate_feature_file(path, "harvest_visual") is None
    path = save("h7.npy", np.full((10, 7), 1.0))
    assert validate_feature_file(path, "harvest_audio", num_classes=7) is None
    assert "expected (10, 25)" in validate_feature_file(path, "harvest_audio")
    nan = save("nan.npy", np.full((80, 2048), np.nan, np.float32))
    assert validate_feature_file(nan, "res152") == "163840 non-finite values (NaN or inf)"
    assert validate_feature_file(nan, "res152", quick=True) is None
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "not a readable .npy file" in validate_feature_file(obj, "clip")
    with pytest.raises(Exception, match="unknown feature kind"):
        validate_feature_file(ok, "mfcc")


def test_cli_usage_errors(cli, tmp_path: Path):
    result = cli("data")
    assert result.code == 2 and "check" in result.err
    result = cli("data", "check", tmp_path / "nowhere")
    assert result.code == 2 and "data root not found" in result.err
    for flag, value in (("--show", "-1"), ("--workers", "0"), ("--show", "ten")):
        result = cli("data", "check", tmp_path, flag, value)
        assert result.code == 2 and f"argument {flag}" in result.err, result.err


def test_cli_refuses_an_unwritable_json_path_before_checking(clean_root: Path, cli, tmp_path):
    result = cli("data", "check", clean_root, "--json", tmp_path, "--no-progress")
    assert result.code == 2 and "is a folder; --json needs a file name" in result.err
    assert "annotation files" not in result.out  # refused before the check ran
    (tmp_path / "file").write_text("x")
    result = cli("data", "check", clean_root, "--json", tmp_path / "file" / "r.json")
    assert result.code == 2 and "is not a folder" in result.err


def test_real_llp_annotations(llp_root: Path):
    report = check_root(llp_root)
    assert report.ok, report.problems()
    notes = "\n".join(report.notes)
    assert "onset 9 is after offset 0" in notes
    assert "AVVP_eval_audio.csv: 8 clips are in neither val nor test" in notes
    assert "test: 38 (clip, class) pairs have dense events but no weak tag, 25 weak tags" in notes
    assert all(not f.exists for f in report.folders)


def test_teacher_outputs_are_checked_like_harvests(root: Path):
    from avparse.data.layout import SCORE_FOLDERS, SOFT_HARVEST_FOLDERS

    train = _ids(root, "train")
    soft = root / SOFT_HARVEST_FOLDERS["audio"]
    scores = root / SCORE_FOLDERS["visual"]
    soft.mkdir(parents=True, exist_ok=True)  # synthetic roots hold them already
    scores.mkdir(parents=True, exist_ok=True)
    for c in train:
        np.save(soft / f"{c}.npy", np.full((10, 25), 0.25, np.float32))
        np.save(scores / f"{c}.npy", np.full((10, 25), 17.0, np.float32))
    assert check_root(root).ok
    np.save(soft / f"{train[0]}.npy", np.full((10, 25), 1.5, np.float32))
    np.save(scores / f"{train[1]}.npy", np.full((10, 25), np.nan, np.float32))
    (scores / f"{train[2]}.npy").unlink()
    problems = check_root(root).problems()
    assert len(problems) == 3, problems
    assert f"{SOFT_HARVEST_FOLDERS['audio']}/{train[0]}.npy: probabilities must lie in [0, 1]" in (
        problems
    )
    assert f"{SCORE_FOLDERS['visual']}/{train[2]}.npy: missing (train)" in problems
    assert any("250 non-finite values" in p for p in problems)


def test_harvest_positives_outside_the_tags_are_refused(root: Path, cli):
    report = check_root(root)
    assert [a.outside for a in report.agreement] == [0, 0]
    assert all(a.positives > 0 for a in report.agreement)
    # as a harvest written with another class order: positives in untagged columns
    folder = root / HARVEST_FOLDERS["visual"]
    weak = LLPAnnotations(root).weak("train")
    train = weak.ids
    for cid, tags in zip(train[:3], weak.labels[:3], strict=True):
        harvest = np.load(folder / f"{cid}.npy")
        harvest[2:4, np.flatnonzero(~tags)[0]] = 1
        np.save(folder / f"{cid}.npy", harvest)
    report = check_root(root)
    lines = [p for p in report.problems() if "outside the clips' weak labels" in p]
    assert len(lines) == 1 and lines[0].startswith(f"{HARVEST_FOLDERS['visual']}: ")
    assert f"e.g. {train[0]}, {train[1]}, {train[2]}" in lines[0] and "\n" not in lines[0]
    result = cli("data", "check", root, "--no-progress")
    assert result.code == 1 and "% of harvest positives" in result.out
    result = cli("data", "check", root, "--no-progress", "--accept-harvest-mismatch")
    assert result.code == 0 and "note (accepted): CLIP/segment_pseudo_labels" in result.out


def test_outside_share_counts_and_refuses():
    weak = np.zeros((4, 3), dtype=bool)
    weak[:, 0] = True
    harvest = np.zeros((4, 10, 3), dtype=np.uint8)
    harvest[:, :5, 0] = 1  # 20 inside
    harvest[2, 3:7, 2] = 1  # 4 outside, in clip "c"
    found = outside_share("H", harvest, weak, ["a", "b", "c", "d"])
    assert (found.positives, found.outside, found.clips) == (24, 4, ("c",))
    assert found.share == pytest.approx(4 / 24)
    with pytest.raises(HarvestMismatchError, match=r"^H: 16\.7% .* e\.g\. c .*--set x=true$"):
        refuse_outside(found, accept=False, how_to_accept="--set x=true")
    refuse_outside(found, accept=True, how_to_accept="")
    refuse_outside(
        outside_share("H", harvest * 0, weak, list("abcd")), accept=False, how_to_accept=""
    )
