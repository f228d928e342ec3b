"""``avparse harvest`` at its boundaries: failed runs never block the rerun, bad settings are one
line (exit 2), resume does not depend on how a path is spelled, progress only on a terminal."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")

from avparse.media.synthetic import write_test_video

HEADER = "filename\tevent_labels\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    from avparse.teachers.tiny import save_tiny_teachers

    clip, clap = save_tiny_teachers(tmp_path_factory.getbasetemp() / "avparse-tiny-teachers")
    data = tmp_path_factory.mktemp("hardening")
    write_test_video(data / "videos" / "toneclip001.mp4", seconds=2, size=(32, 32), fps=8)
    (data / "labels.csv").write_text(HEADER + "toneclip001_0_2\tCello\n")
    return {"clip": clip, "clap": clap, "videos": data / "videos", "labels": data / "labels.csv"}


def run(cli, setup, out, *extra, clip=None, clap=None):
    return cli(
        "harvest", "--videos", setup["videos"], "--labels", setup["labels"], "--out", out,
        "--clip-model", clip or setup["clip"], "--clap-model", clap or setup["clap"],
        "--no-progress", *extra,
    )  # fmt: skip


def one_line(result) -> bool:
    return result.code == 2 and len(result.err.strip().splitlines()) == 1


def test_failed_models_never_block_the_corrected_rerun(cli, setup, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "root"
    # a hub id that is not cached (offline): fails when the model loads
    failed = run(cli, setup, out, clip="avparse-tests/no-such-clip")
    assert one_line(failed) and "offline" in failed.err
    assert not (out / "harvest.json").exists()
    fixed = run(cli, setup, out)
    assert fixed.code == 0 and "harvested 1 clip," in fixed.out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "tpu"], "--device tpu: expected cpu, cuda, cuda:N or mps"),
        (["--device", "cuda:x"], "expected cpu, cuda"),
        (["--workers", "-1"], "--workers -1: must be at least 1"),
        (["--workers", "0"], "must be at least 1"),
        (["--teacher-inputs", "new"], "invalid choice"),
    ],
)
def test_bad_settings_are_one_line(cli, setup, tmp_path, flags, message):
    out = tmp_path / "root"
    result = run(cli, setup, out, *flags)
    assert result.code == 2 and message in result.err
    assert not (out / "harvest.json").exists()


def test_device_without_gpu_never_blocks_the_rerun(cli, setup, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    out = tmp_path / "root"
    result = run(cli, setup, out, "--device", "cuda")
    assert one_line(result) and "no CUDA device" in result.err
    assert not (out / "harvest.json").exists()
    assert run(cli, setup, out).code == 0


def test_output_path_errors_are_one_line(cli, setup, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = run(cli, setup, a_file)
    assert one_line(result) and "output folder is an existing file" in result.err
    result = run(cli, setup, a_file / "root")
    assert one_line(result) and "cannot create the output folder" in result.err


def test_resume_does_not_depend_on_path_spelling(cli, setup, tmp_path, monkeypatch):
    out = tmp_path / "root"
    assert run(cli, setup, out).code == 0
    recorded = json.loads((out / "harvest.json").read_text())
    assert recorded["clip_model"] == str(setup["clip"].resolve())
    # the same folders given relative to another working folder
    monkeypatch.chdir(setup["clip"].parent.parent)
    clip = os.path.relpath(setup["clip"])
    clap = "./" + os.path.relpath(setup["clap"])
    again = run(cli, setup, out, clip=clip, clap=clap)
    assert again.code == 0 and "skipped 1 finished" in again.out


def test_a_root_of_avparse_0_1_is_not_mixed_with_published_inputs(cli, setup, tmp_path):
    out = tmp_path / "root"
    assert run(cli, setup, out, "--teacher-inputs", "0.1").code == 0
    record = json.loads((out / "harvest.json").read_text())
    del record["teacher_inputs"]  # as avparse 0.1 wrote it, with the path as typed
    (out / "harvest.json").write_text(json.dumps(record))
    refused = run(cli, setup, out)
    assert one_line(refused) and "--teacher-inputs 0.1" in refused.err
    assert "skipped 1 finished" in run(cli, setup, out, "--teacher-inputs", "0.1").out


def test_malicious_r2plus1d_file_is_one_line(cli, setup, tmp_path):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    weights = tmp_path / "evil.pth"
    torch.save({"stem.0.weight": Evil()}, weights)
    result = run(cli, setup, tmp_path / "root", "--r2plus1d", weights)
    assert one_line(result) and "not a readable torch state dict" in result.err
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "root" / "harvest.json").exists()


def test_progress_is_plain_lines_off_a_terminal(cli, setup, tmp_path):
    args = ["harvest", "--videos", setup["videos"], "--labels", setup["labels"]]
    args += ["--clip-model", setup["clip"], "--clap-model", setup["clap"]]
    result = cli(*args, "--out", tmp_path / "root")
    assert result.code == 0 and "\r" not in result.err
    assert "harvest: 1/1 clip" in result.err  # one plain line per step
    quiet = cli(*args, "--out", tmp_path / "other", "--quiet")
    assert quiet.code == 0 and quiet.err == ""
