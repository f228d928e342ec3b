"""``avparse parse INPUT... [--list FILE]``: events heard, seen, and both, for any video file.

Inputs are files, folders, glob patterns and list files; under ``torchrun`` the videos are
shared out over the ranks (:mod:`avparse.parsing.batch`).

Thin over :func:`avparse.parsing.batch.parse_many` (which skips finished videos, records failed
ones and finishes the rest); this module only parses arguments and prints. See ``docs/parsing.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE
from avparse.parsing.api import MAX_SEGMENTS
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP, TEACHER_INPUTS
from avparse.teachers.loading import PRECISIONS
from avparse.utils.lock import hold_folder
from avparse.utils.progress import add_progress_flags, progress_enabled
from avparse.utils.text import count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "videos",
        nargs="*",
        metavar="INPUT",
        help="video or audio files, folders (searched recursively) or glob patterns (quoted: "
        "'clips/**/*.mp4')",
    )
    parser.add_argument(
        "--list",
        metavar="FILE",
        help="also parse the paths in FILE, one per line ('-': standard input); for collections "
        "too long for a command line",
    )
    src = parser.add_argument_group("what parses")
    src.add_argument(
        "--model",
        metavar="DIR|FILE",
        help="student model folder or hub id (VALOR++ family), or a published .pt with --preset",
    )
    src.add_argument(
        "--preset", help="preset of a published .pt checkpoint given as --model (e.g. valor++)"
    )
    src.add_argument(
        "--zero-shot", action="store_true", help="use the CLIP/CLAP teachers alone (no training)"
    )
    src.add_argument(
        "--classes", metavar="NAMES", help='zero-shot classes, comma-separated: "dog barking,car"'
    )
    src.add_argument(
        "--vocab", choices=("llp", "ave", "unav"), help="zero-shot built-in vocabulary"
    )
    src.add_argument(
        "--thresholds",
        type=Path,
        metavar="FILE",
        help="zero-shot thresholds file (avparse calibrate output)",
    )
    src.add_argument("--clip-model", default=DEFAULT_CLIP, help="CLIP teacher")
    src.add_argument("--clap-model", default=DEFAULT_CLAP, help="CLAP teacher")
    src.add_argument(
        "--r2plus1d",
        type=Path,
        metavar="WEIGHTS",
        help="R(2+1)D-18 weights (torchvision's r2plus1d_18-91a641e6.pth); default: torch.hub download",
    )
    src.add_argument(
        "--snippet-fps", type=float, default=SNIPPET_FPS, help="R(2+1)D-18 frames per second"
    )
    src.add_argument(
        "--snippet-size", type=int, default=SNIPPET_SIZE, help="R(2+1)D-18 frame side (px)"
    )
    src.add_argument(
        "--teacher-inputs",
        choices=TEACHER_INPUTS,
        default=TEACHER_INPUTS[0],
        help="how frames and sound reach the teachers: as VALOR's harvest (what the published "
        "checkpoints and thresholds were made with) or as avparse 0.1",
    )
    src.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="teachers' and R(2+1)D-18's arithmetic (bfloat16: faster on CPUs with AMX or "
        "AVX512-BF16 and on GPUs; see README, Precision)",
    )
    src.add_argument("--device", default="cpu", help="cpu or cuda")
    src.add_argument(
        "--max-segments",
        type=int,
        default=MAX_SEGMENTS,
        metavar="N",
        help="a student trained on any length reads up to N one-second segments in one pass, "
        "longer videos in windows of N (default %(default)s)",
    )
    out = parser.add_argument_group("outputs")
    out.add_argument(
        "--out", type=Path, metavar="DIR", default=Path("parsed"), help="output folder"
    )
    out.add_argument("--plot", action="store_true", help="also write <stem>.png timelines")
    out.add_argument("--html", action="store_true", help="also write <stem>.html viewer pages")
    out.add_argument(
        "--truth-audio", type=Path, metavar="TSV", help="dense audio labels to overlay (TSV)"
    )
    out.add_argument(
        "--truth-visual", type=Path, metavar="TSV", help="dense visual labels to overlay (TSV)"
    )
    out.add_argument("--overwrite", action="store_true", help="redo videos already parsed")
    add_progress_flags(parser)


def run(args: argparse.Namespace) -> int:
    from avparse.parsing.api import check_max_segments
    from avparse.parsing.batch import ParsedVideo, parse_many

    check_max_segments(args.max_segments)

    def note(text: str) -> None:
        print(f"note: {text}", file=sys.stderr)

    def show(item: ParsedVideo) -> None:
        if item.status == "failed":
            hint = " (rerun with --debug for details)" if item.unexpected else ""
            print(f"avparse parse: error: {item.error}{hint}", file=sys.stderr)
            return
        if args.quiet:
            return
        if item.status == "skipped":
            if item.notes:
                print(f"{item.video}: {item.notes[0]}, skipped")
            else:
                print(f"{item.video}: already parsed into {item.json_path}, skipped "
                      "(--overwrite redoes it)")  # fmt: skip
            return
        for text in item.notes:
            note(f"{item.video}: {text}")
        print(f"{item.video}: {item.counts()} events -> {item.json_path}")

    with hold_folder(args.out, flag="--out"):  # one job per output folder
        report = parse_many(
            args.videos, args.out, args.model, list_file=args.list, preset=args.preset, plot=args.plot, html=args.html,
            truth_audio=args.truth_audio, truth_visual=args.truth_visual, overwrite=args.overwrite,
            show_progress=progress_enabled(args), on_video=show, on_note=note,
            raise_unexpected=args.debug, zero_shot=args.zero_shot, classes=args.classes,
            vocab=args.vocab, thresholds=args.thresholds, clip_model=args.clip_model,
            clap_model=args.clap_model, r2plus1d=args.r2plus1d, device=args.device,
            snippet_fps=args.snippet_fps, snippet_size=args.snippet_size,
            teacher_inputs=args.teacher_inputs, precision=args.precision,
            max_segments=args.max_segments,
        )  # fmt: skip
    if report.failed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        where = f" (rank {os.environ.get('RANK', '0')} of {world})" if world > 1 else ""
        print(
            f"avparse parse: {len(report.failed)} of {count(len(report.videos), 'video')} "
            f"failed{where}",
            file=sys.stderr,
        )
    return report.exit_status
