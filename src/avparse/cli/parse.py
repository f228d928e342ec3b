"""``avparse parse VIDEO...``: events heard, seen, and both, with times, for any video file.

Thin over :class:`avparse.parsing.api.Parser` and the writers in :mod:`avparse.parsing`; see
``docs/parsing.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avparse.errors import AvparseError
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files")
    src = parser.add_argument_group("what parses")
    src.add_argument(
        "--model", metavar="DIR", help="student model folder or hub id (VALOR++ family)"
    )
    src.add_argument(
        "--zero-shot", action="store_true", help="use the CLIP/CLAP teachers alone (no training)"
    )
    src.add_argument(
        "--classes", metavar="NAMES", help='zero-shot classes, comma-separated: "dog barking,car"'
    )
    src.add_argument("--vocab", choices=("llp", "ave"), help="zero-shot built-in vocabulary")
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
    src.add_argument("--device", default="cpu", help="cpu or cuda")
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


def _stems(videos: list[Path]) -> list[str]:
    """Output stems, made unique (``clip``, ``clip-2``) when two videos share a name."""
    seen: dict[str, int] = {}
    stems = []
    for video in videos:
        n = seen.get(video.stem, 0) + 1
        seen[video.stem] = n
        stems.append(video.stem if n == 1 else f"{video.stem}-{n}")
    return stems


def _one_line(video: Path, exc: AvparseError) -> str:
    text = " ".join(str(exc).split())
    return text if str(video) in text else f"{video}: {text}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avparse.parsing.api import Parser
    from avparse.parsing.output import write_result

    truth_files = (args.truth_audio, args.truth_visual)
    for path in truth_files:
        if path is not None and not path.is_file():
            raise AvparseError(f"{path}: truth file not found")
    todo = []
    for video, stem in zip(args.videos, _stems(args.videos), strict=True):
        if (args.out / f"{stem}.json").is_file() and not args.overwrite:
            print(f"{video}: {args.out / stem}.json exists, skipped (--overwrite redoes it)")
        else:
            todo.append((video, stem))
    if not todo:
        return 0
    parser = Parser(
        args.model,
        zero_shot=args.zero_shot,
        classes=args.classes,
        vocab=args.vocab,
        thresholds=args.thresholds,
        clip_model=args.clip_model,
        clap_model=args.clap_model,
        r2plus1d=args.r2plus1d,
        device=args.device,
        snippet_fps=args.snippet_fps,
        snippet_size=args.snippet_size,
    )
    for note in parser.notes:
        print(f"note: {note}", file=sys.stderr)
    failed: list[Path] = []
    pages = []
    for video, stem in tqdm(todo, desc="parse", unit="video", disable=None):
        try:
            result = parser.parse(video)
        except AvparseError as exc:
            print(f"avparse parse: error: {_one_line(video, exc)}", file=sys.stderr)
            failed.append(video)
            continue
        except Exception as exc:  # a decoder or model failure on one file must not end the batch
            if args.debug:
                raise
            why = f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback)"
            print(f"avparse parse: error: {_one_line(video, AvparseError(why))}", file=sys.stderr)
            failed.append(video)
            continue
        for note in result.notes[len(parser.notes) :]:
            print(f"note: {video}: {note}", file=sys.stderr)
        truth = None
        if any(truth_files):
            from avparse.parsing.plot import truth_events

            truth = truth_events(video.stem, parser.vocab, *truth_files)
        # the JSON is written last: its presence marks the video as done
        if args.plot:
            from avparse.parsing.plot import plot_timeline

            plot_timeline(result, args.out / f"{stem}.png", truth=truth)
        if args.html:
            from avparse.parsing.html import write_page

            pages.append((result, write_page(result, args.out / f"{stem}.html", truth=truth)))
        write_result(result, args.out, stem)
        counts = ", ".join(
            f"{len(result.events_of(m))} {m}" for m in ("audio", "visual", "audio-visual")
        )
        print(f"{video}: {counts} events -> {args.out / stem}.json")
    if args.html and len(args.videos) > 1:
        from avparse.parsing.html import write_index

        write_index(pages, args.out / "index.html")
    if failed:
        print(f"avparse parse: {len(failed)} of {len(args.videos)} videos failed", file=sys.stderr)
        return 1
    return 0
