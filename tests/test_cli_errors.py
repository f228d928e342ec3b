"""Top-level CLI behaviour: one line per error, exit codes, --debug, broken pipes, progress."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avparse.cli import main as cli_main
from avparse.errors import AvparseError, first_line
from avparse.utils import progress as progress_mod
from avparse.utils.progress import add_progress_flags, progress, progress_enabled
from conftest import SRC


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("one\ntwo"), "one"),
        (ValueError("\n  \n  second line\nthird"), "second line"),
        (ValueError(""), "ValueError"),  # the old copies raised IndexError here
        (RuntimeError("   "), "RuntimeError"),
        (_BadStr(), "_BadStr"),
        (KeyError("k"), "'k'"),
    ],
)
def test_first_line(exc: BaseException, expected: str):
    assert first_line(exc) == expected


def _raise(exc: BaseException):
    def run(args: argparse.Namespace) -> int:
        raise exc

    return run


@pytest.fixture
def fake_command(monkeypatch):
    """``avparse score`` whose run raises what the test asks for."""

    def install(exc: BaseException) -> None:
        real = cli_main.build_parser

        def build(command=None):
            parser = real(None)  # the subcommand without its (required) arguments
            parser.set_defaults(_run=_raise(exc), command="score")
            return parser

        monkeypatch.setattr(cli_main, "build_parser", build)

    return install


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (AvparseError("x.tsv:3: bad row"), 2, "avparse score: error: x.tsv:3: bad row"),
        (
            IsADirectoryError(21, "Is a directory", "out/scores.json"),
            2,
            "avparse score: error: out/scores.json: Is a directory",
        ),
        (PermissionError(13, "Permission denied"), 2, "avparse score: error: Permission denied"),
        (  # a failed rename names the destination the user gave, not our temporary file
            IsADirectoryError(21, "Is a directory", "/x/.tmp.abc.tmp", None, "/x/out"),
            2,
            "avparse score: error: /x/out: Is a directory",
        ),
        (
            ZeroDivisionError("division by zero"),
            1,
            "avparse score: error: unexpected ZeroDivisionError: division by zero "
            "(rerun with --debug for details)",
        ),
        (KeyboardInterrupt(), 130, "avparse score: interrupted"),
    ],
)
def test_errors_are_one_line_with_the_exit_code(fake_command, cli, exc, code, text):
    fake_command(exc)
    result = cli("score")
    assert result.code == code
    assert result.err.strip() == text


def test_debug_shows_the_traceback_before_or_after_the_command(fake_command, cli):
    fake_command(ZeroDivisionError("boom"))
    for args in (("--debug", "score"), ("score", "--debug")):
        with pytest.raises(ZeroDivisionError):
            cli_main.main(list(args))


def test_broken_pipe_on_stdout_is_quiet():
    # a reader that goes away after the first line: `avparse score ... | head -1`
    code = (
        "import sys\n"
        "from avparse.cli import main as m\n"
        "def run(args):\n"
        "    for i in range(100000): print('line', i)\n"
        "    return 0\n"
        "real = m.build_parser\n"
        "def build(c=None):\n"
        "    p = real(None); p.set_defaults(_run=run, command='score'); return p\n"
        "m.build_parser = build\n"
        "raise SystemExit(m.main(['score']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"line 0")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_score_json_into_a_folder_is_one_line(tmp_path: Path, cli):
    from test_score_cli import HEADER  # the same tiny annotation layout

    root = tmp_path / "llp"
    root.mkdir()
    (root / "AVVP_test_pd.csv").write_text("filename\tevent_labels\nclipAAAAAAA_0_10\tDog\n")
    (root / "AVVP_val_pd.csv").write_text("filename\tevent_labels\n")
    (root / "AVVP_eval_audio.csv").write_text(HEADER + "clipAAAAAAA_0_10\t0\t4\tDog\n")
    (root / "AVVP_eval_visual.csv").write_text(HEADER)
    pred = tmp_path / "p.tsv"
    pred.write_text(HEADER)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("score", "--annotations", root, "--audio", pred, "--visual", pred, "--json", out)
    assert result.code == 2
    assert result.err.count("\n") == 1 and str(out) in result.err
    assert "Traceback" not in result.err


def test_progress_lines_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress(range(3), desc="parse", unit="video")) == [0, 1, 2]
    lines = sys.stderr.getvalue().splitlines()  # type: ignore[attr-defined]
    assert [line.split(" (")[0] for line in lines] == ["parse: 1/3 video", "parse: 3/3 video"]
    assert "\r" not in sys.stderr.getvalue()  # type: ignore[attr-defined]


def test_progress_rate_limits_and_ends_an_unsized_iterable(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress_mod, "LINE_INTERVAL_S", 3600.0)
    assert sum(progress(iter(range(50)), desc="x")) == sum(range(50))
    lines = sys.stderr.getvalue().splitlines()  # type: ignore[attr-defined]
    assert [line.split(" (")[0] for line in lines] == ["x: 1 it", "x: 50 it"]


def test_progress_disabled_prints_nothing(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert list(progress([1, 2], desc="x", enabled=False)) == [1, 2]
    assert sys.stderr.getvalue() == ""  # type: ignore[attr-defined]


def test_progress_flags():
    parser = argparse.ArgumentParser()
    add_progress_flags(parser)
    assert progress_enabled(parser.parse_args([]))
    assert not progress_enabled(parser.parse_args(["--no-progress"]))
    assert not progress_enabled(parser.parse_args(["--quiet"]))


def test_a_command_failing_on_its_input_leaves_no_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "o" / "deep"
    assert cli_main.main(["evaluate", "--data", str(tmp_path / "nodata"), "--checkpoint",
                 str(tmp_path / "nomodel"), "--split", "test", "--out", str(out)]) == 2  # fmt: skip
    assert cli_main.main(["train", "--data", str(tmp_path / "nodata"), "--out", str(out)]) == 2
    assert not (tmp_path / "o").exists()


def test_output_folder_under_a_file_is_one_line(tmp_path: Path) -> None:
    from avparse.utils.atomic import prepare_output_folder

    (tmp_path / "f").write_text("x")
    with pytest.raises(AvparseError, match="is not a folder"):
        prepare_output_folder(tmp_path / "f" / "out")
    prepare_output_folder(tmp_path / "new" / "out")  # creatable: fine, and nothing is made
    assert not (tmp_path / "new").exists()


def test_new_user_messages(cli, tmp_path: Path) -> None:
    """Issue 20 items 9, 11, 12, 15: messages say what is needed, never advise unpickling."""
    import avparse
    from avparse.model.checkpoint import save_student
    from avparse.model.config import model_config
    from avparse.model.han import HAN

    for call in (lambda: avparse.parse("clip.mp4"),):
        with pytest.raises(AvparseError, match="nothing to parse with") as info:
            call()
        assert "not both" not in str(info.value)
    res = cli("parse", tmp_path / "clip.mp4", "--out", tmp_path / "o")
    assert res.code == 2 and "--model" in res.err and "--zero-shot" in res.err
    assert "not both" not in res.err
    folder = save_student(HAN(model_config("tiny")), model_config("tiny"), tmp_path / "m")
    res = cli("convert", folder, "--preset", "valor++", "--out", tmp_path / "c")
    assert res.code == 2 and "already a model folder" in res.err and "use it directly" in res.err
    tsv = tmp_path / "file.tsv"
    tsv.write_text("filename\tevent_labels\nx\tSpeech\n")
    res = cli("evaluate", "--data", tmp_path, "--checkpoint", tsv, "--preset", "valor",
              "--out", tmp_path / "e")  # fmt: skip
    assert res.code == 2 and "not a state dict" in res.err, res.err
    assert "weights_only=False" not in res.err and res.err.count("\n") == 1
    for sub in ("check", "pack", "synth"):
        shown = cli("data", sub, "--help")
        assert "--debug" in shown.out, sub
    with pytest.raises(AvparseError, match="data root not found"):  # --debug: the traceback
        cli("data", "check", tmp_path / "none", "--debug")


def test_unav_inputs_to_llp_commands_name_the_way(cli, tmp_path: Path) -> None:
    """New-user defects: UnAV-100's annotation file given to harvest without --task unav, or to
    calibrate (no UnAV-100 task), is one line naming what to do; a harvest root without its
    annotation file is recognised by the task its harvest.json records."""
    from avparse.data.roots import root_task

    root = tmp_path / "unav"
    root.mkdir()
    ann = root / "unav100_annotations.json"
    ann.write_text('{"version": "unav100", "database": {}}')
    res = cli("harvest", "--videos", tmp_path, "--labels", ann, "--out", tmp_path / "h")
    assert res.code == 2 and "pass --task unav" in res.err and res.err.count("\n") == 1
    assert not (tmp_path / "h").exists()
    res = cli("calibrate", "--harvest", tmp_path, "--annotations", root, "--out", tmp_path / "t")
    assert res.code == 2 and "avparse teacher label" in res.err and res.err.count("\n") == 1
    assert "--task unav" not in res.err  # calibrate has no such task
    harvested = tmp_path / "harvested"
    harvested.mkdir()
    assert root_task(harvested) is None
    (harvested / "harvest.json").write_text('{"task": "unav"}')
    assert root_task(harvested) == "unav"
    (harvested / "harvest.json").write_text("[1, 2]")
    assert root_task(harvested) is None


def test_a_unav_model_on_an_llp_root_names_the_task(cli, tmp_path: Path) -> None:
    """Not "AVVP_test_pd.csv:2: unknown class 'Singing'" (the split file is fine)."""
    from avparse.model.checkpoint import save_student
    from avparse.model.config import model_config
    from avparse.model.han import HAN

    root = tmp_path / "llp"
    root.mkdir()
    for name in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv"):
        (root / name).write_text("filename\tevent_labels\nclipAAAAAAA_0_10\tSinging\n")
    config = model_config("tiny", vocabulary="unav")  # 100 classes
    folder = save_student(HAN(config), config, tmp_path / "m")
    res = cli("evaluate", "--data", root, "--checkpoint", folder, "--out", tmp_path / "e")
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert "a data root for task llp, but" in res.err and "for task unav" in res.err
    assert "unknown class" not in res.err
    res = cli("evaluate", "--data", root, "--checkpoint", folder, "--out", tmp_path / "e",
              "--task", "llp")  # fmt: skip
    assert res.code == 2 and "--task llp contradicts the model's vocabulary 'unav'" in res.err


def test_data_check_of_a_folder_that_is_no_root_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    res = cli("data", "check", tmp_path, "--no-progress")
    assert res.code == 2 and "not a data root" in res.err and res.err.count("\n") == 1
    assert res.out == ""
    forced = cli("data", "check", tmp_path, "--task", "llp", "--no-progress")
    assert forced.code == 1 and "AVVP_train.csv: missing" in forced.out  # --task: the report


def test_parse_of_a_folder_without_media_names_it(cli, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    (folder / ".hidden.mp4").write_bytes(b"")
    res = cli("parse", folder, "--zero-shot", "--vocab", "llp", "--out", tmp_path / "o")
    assert res.code == 2 and f"{folder}: no video or audio files" in res.err
    assert res.err.count("\n") == 1 and ".mp4" in res.err


def test_score_of_a_unav_root_points_to_evaluate(cli, tmp_path: Path) -> None:
    (tmp_path / "unav100_annotations.json").write_text("{}")
    pred = tmp_path / "audio.tsv"
    pred.write_text("video_id\tonset\toffset\tevent_labels\n")
    res = cli("score", "--annotations", tmp_path, "--audio", pred, "--visual", pred)
    assert res.code == 2 and "evaluate --task unav" in res.err and res.err.count("\n") == 1


def test_a_teacher_pt_that_is_no_state_dict_is_refused_without_unpickling(tmp_path) -> None:
    """The temporal teacher reads a published .pt through the student's one safe reader."""
    import torch

    from avparse.temporal.checkpoint import load_teacher

    junk = tmp_path / "teacher.pt"
    torch.save({"epoch": 3, "args": argparse.Namespace(lr=1e-4)}, junk)  # not weights only
    with pytest.raises(AvparseError, match=r"teacher\.pt: not a state dict") as info:
        load_teacher(junk, "uwav")
    assert "weights_only=False" not in str(info.value)
