"""Parse at scale (issue 22) end to end: a collection in one command, resumed, summarised, and
the same outputs from 2 torchrun ranks as from 1 process (CPU, gloo, tiny zero-shot teachers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> dict[str, Path]:
    from avparse.media.synthetic import write_test_video
    from avparse.teachers.tiny import save_tiny_teachers

    root = tmp_path_factory.mktemp("collection")
    clip_dir, clap_dir = save_tiny_teachers(root / "models")
    videos = root / "videos"
    for i, rel in enumerate(("a/clip.mp4", "b/clip.mp4", "c/other.mp4", "c/deep/last.mp4")):
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
        write_test_video(videos / rel, seconds=2 + i, size=(32, 32), fps=4, tone_hz=300.0 + 50 * i)
    return {"clip": clip_dir, "clap": clap_dir, "videos": videos, "root": root}


def _zero_shot(c: dict[str, Path]) -> list[str]:
    return ["--zero-shot", "--classes", "dog,car", "--clip-model", str(c["clip"]),
            "--clap-model", str(c["clap"]), "--no-progress"]  # fmt: skip


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_collection_is_parsed_resumed_and_summarised(cli, collection, tmp_path) -> None:
    import avparse
    from avparse.parsing.batch import iter_parse

    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'gone.mp4'}\n")
    out = tmp_path / "out"
    first = cli("parse", collection["videos"], "--list", listing, "--out", out, "--html",
                *_zero_shot(collection))  # fmt: skip
    assert first.code == 1 and "gone.mp4: video file not found" in first.err
    assert "1 of 5 videos failed" in first.err
    rows = _rows(out)
    assert [r["output"] for r in rows] == ["clip", "clip-2", "gone", "last", "other"]
    assert [r["status"] for r in rows].count("failed") == 1
    assert all(r["files"][:2] == [f"{r['output']}.json", f"{r['output']}.tsv"]
               for r in rows if r["status"] == "parsed")  # fmt: skip
    assert (out / "index.html").is_file() and (out / "results.js").is_file()
    # an interrupted run: a torn last line and one video's outputs lost; the rerun redoes only it
    (out / "last.json").unlink()
    with open(out / "results.jsonl", "a") as fh:
        fh.write('{"video": "torn')
    again = list(iter_parse([collection["videos"]], out, classes=["dog", "car"],
                            clip_model=collection["clip"], clap_model=collection["clap"],
                            show_progress=False, html=True))  # fmt: skip
    assert sorted((v.status, v.stem) for v in again) == [
        ("parsed", "last"), ("skipped", "clip"), ("skipped", "clip-2"), ("skipped", "other")
    ]  # fmt: skip
    rows = _rows(out)  # compacted: one line per video, the torn line gone, and gone.mp4's
    # failure too (not an input of this run: a failed row is a failure of the latest run)
    assert [r["output"] for r in rows] == ["clip", "clip-2", "last", "other"]
    assert len({r["path"] for r in rows}) == 4
    report = avparse.parse_many([collection["videos"] / "c"], out, classes=["dog", "car"],
                                clip_model=collection["clip"], clap_model=collection["clap"],
                                show_progress=False)  # fmt: skip
    assert [v.stem for v in report] == ["last", "other"] and report.exit_status == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_give_the_outputs_of_one_process(collection, tmp_path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    args = ["-m", "avparse", "parse", str(collection["videos"]), *_zero_shot(collection)]
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
    ]
    two = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two"), "--html"], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("events ->") == 4  # each video parsed once, over both ranks
    names = sorted(p.name for p in (tmp_path / "one").glob("*.json"))
    assert names == ["clip-2.json", "clip.json", "last.json", "other.json"]
    for name in names:  # each video parsed once, by one rank, into the same name and events
        a = json.loads((tmp_path / "one" / name).read_text())
        b = json.loads((tmp_path / "two" / name).read_text())
        assert a["source"] == b["source"] and a["events"] == b["events"], name
        assert a["segments"] == b["segments"]
    rows = _rows(tmp_path / "two")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"parsed"}
    assert (tmp_path / "two" / "index.html").is_file()
    listing = tmp_path / "list.txt"  # a rerun with one more video, which is missing
    listing.write_text(f"{tmp_path / 'gone.mp4'}\n")
    rerun = subprocess.run([*torchrun[:-1], f"--master_port={_free_port()}", *args, "--list",
                            str(listing), "--out", str(tmp_path / "two")], env=env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert rerun.returncode == 1 and rerun.stdout.count("skipped") == 4, rerun.stdout
    assert "gone.mp4: video file not found" in rerun.stderr
    rows = _rows(tmp_path / "two")  # the summaries are written before any rank exits 1
    assert len(rows) == 5 and [r["status"] for r in rows].count("failed") == 1
