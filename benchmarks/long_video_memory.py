"""Peak memory of harvest and parse on a 60 s and a 600 s video (issue 15: within 10 %).

Each measurement runs in its own process (so one's peak cannot hide another's):

* ``harvest``: ``avparse harvest --span full`` of the one video (CLIP / CLAP segment embeddings,
  logits, labels for every one-second segment);
* ``zero-shot``: ``avparse parse --zero-shot --vocab llp`` of the video (10 s windows);
* ``student``: ``avparse parse --model M`` with a student trained on any length (UWAV's network
  on ``clap_segments`` / ``clip_segments``): all segments in one pass.

The process reports its peak resident memory (``VmHWM``) and the resident memory just before
the command started (interpreter, torch, avparse imported), so the table shows the peak and the
growth the work itself added. The teachers are the tiny offline ones (``avparse.teachers.tiny``)
unless ``--full-size`` (random CLIP ViT-L/14 and CLAP HTS-AT at their real sizes: slower, the same
memory behaviour with a larger constant). Videos are synthetic (``write_test_video``) at
``--size`` and 25 fps with a stereo 44.1 kHz tone. Not a test; run by hand::

    .venv/bin/python benchmarks/long_video_memory.py [--lengths 60 600] [--size 180x320]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CHILD = r"""
import json, sys, time
sys.path.insert(0, {src!r})
import torch, transformers, avparse.harvest.job, avparse.parsing.api  # the constant part
from avparse.cli.main import main

def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0

before = status_kb("VmRSS")
began = time.perf_counter()
code = main({argv!r})
seconds = time.perf_counter() - began
# VmHWM: the peak of this process's own memory. (ru_maxrss would not do: Linux carries it over
# fork and exec, so a child would report its parent's peak when that was higher.)
peak = status_kb("VmHWM")
print("RESULT " + json.dumps({{"code": code, "before_kb": before, "peak_kb": peak,
                               "seconds": seconds}}))
"""


def measure(argv: list[str]) -> dict:
    code = CHILD.format(src=str(REPO / "src"), argv=[str(a) for a in argv])
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            if result["code"] != 0:
                raise SystemExit(f"{argv[0]} exited {result['code']}: {out.stderr[-2000:]}")
            return result
    raise SystemExit(f"no result from {argv[:2]}: {out.stderr[-2000:]}")


def student_folder(folder: Path, clip_dim: int, clap_dim: int) -> Path:
    import torch

    from avparse.model.checkpoint import save_student
    from avparse.model.config import ModelConfig
    from avparse.model.han import HAN

    torch.manual_seed(0)
    config = ModelConfig(
        audio_feature="clap_segments",
        visual_feature="clip_segments",
        motion_feature="none",
        arch="uwav",
        d_model=clip_dim,
        num_layers=1,
        nhead=2,
        dim_feedforward=64,
        feature_dims={"audio": clap_dim, "visual": clip_dim},
    )
    return save_student(HAN(config), config, folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=float, nargs="+", default=[60.0, 600.0])
    ap.add_argument("--size", default="180x320", help="video HEIGHTxWIDTH")
    ap.add_argument("--full-size", action="store_true", help="real-size random teachers")
    ap.add_argument("--work", type=Path, default=None, help="folder to keep videos and models")
    ap.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="harvest --batch-size (windows per model call; 2 x that many decode ahead)",
    )
    ap.add_argument(
        "--copies",
        type=int,
        nargs="+",
        default=None,
        help="harvest this many copies of each length's video (one number per length, e.g. "
        "10 1: ten 60 s videos against one 600 s video, the same segments)",
    )
    ap.add_argument(
        "--only", nargs="+", default=["harvest", "zero-shot", "student"], help="commands to run"
    )
    args = ap.parse_args()
    h, w = (int(x) for x in args.size.split("x"))

    from avparse.media.synthetic import write_test_video
    from avparse.teachers.tiny import save_full_size_teachers, save_tiny_teachers

    work = args.work or Path(tempfile.mkdtemp(prefix="avparse-longmem-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.full_size:
        clip_dir, clap_dir = save_full_size_teachers(work / "teachers")
        dims = (768, 512)
    else:
        clip_dir, clap_dir = save_tiny_teachers(work / "teachers")
        dims = (16, 16)
    student = work / "student"
    if not (student / "config.json").is_file():
        student_folder(student, *dims)
    teachers = ["--clip-model", clip_dir, "--clap-model", clap_dir]
    rows = []
    copies = args.copies or [1] * len(args.lengths)
    for seconds, n_copies in zip(args.lengths, copies, strict=True):
        name = f"long{int(seconds):05d}s"
        videos = work / f"videos-{name}"
        video = videos / f"{name}.mp4"
        if not video.is_file():
            began = time.perf_counter()
            write_test_video(video, seconds=seconds, size=(h, w), fps=25)
            print(f"wrote {video} ({time.perf_counter() - began:.0f} s)", flush=True)
        labels = work / f"{name}-x{n_copies}.csv"
        names = [name] + [f"v{i:02d}{name}" for i in range(1, n_copies)]  # ids: 11 chars
        for extra in names[1:]:
            if not (videos / f"{extra}.mp4").exists():
                os.link(video, videos / f"{extra}.mp4")
        labels.write_text("filename\tevent_labels\n" + "".join(f"{c}\tSpeech,Dog\n" for c in names))
        runs = {
            "harvest": ["harvest", "--videos", videos, "--labels", labels, "--span", "full",
                        "--out", work / f"root-{name}", "--overwrite", "--device", "cpu",
                        "--batch-size", args.batch_size, "--no-progress", *teachers],
            "zero-shot": ["parse", video, "--zero-shot", "--vocab", "llp", "--overwrite",
                          "--out", work / f"zs-{name}", "--no-progress", *teachers],
            "student": ["parse", video, "--model", student, "--overwrite",
                        "--out", work / f"st-{name}", "--no-progress", *teachers],
        }  # fmt: skip
        for what, argv in runs.items():
            if what not in args.only:
                continue
            r = measure(argv)
            if what == "harvest" and n_copies > 1:
                what = f"harvest x{n_copies}"
            rows.append((what, seconds, r))
            print(
                f"{what:10s} {seconds:6.0f} s video: peak {r['peak_kb'] / 1024:7.1f} MiB, "
                f"growth {(r['peak_kb'] - r['before_kb']) / 1024:7.1f} MiB, "
                f"{r['seconds']:6.1f} s",
                flush=True,
            )
    print("\n| command | video | peak RSS (MiB) | growth over start (MiB) | wall (s) |")
    print("| --- | --- | --- | --- | --- |")
    for what, seconds, r in rows:
        print(
            f"| {what} | {seconds:.0f} s | {r['peak_kb'] / 1024:.0f} | "
            f"{(r['peak_kb'] - r['before_kb']) / 1024:.0f} | {r['seconds']:.0f} |"
        )
    if len(args.lengths) >= 2:
        print()
        for what in args.only:
            peaks = [r["peak_kb"] for w_, _, r in rows if w_.split()[0] == what]
            print(f"{what}: longest / shortest peak = {peaks[-1] / peaks[0]:.3f}")


if __name__ == "__main__":
    main()
