"""``avparse harvest``: decode videos, run the CLIP / CLAP teachers, write harvests and features."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avparse.data.layout import SPLITS
from avparse.features.sampling import SNIPPET_FPS, SNIPPET_SIZE
from avparse.harvest.outputs import SPANS
from avparse.teachers.clap import DEFAULT_CLAP
from avparse.teachers.clip import DEFAULT_CLIP, TEACHER_INPUTS
from avparse.teachers.loading import PRECISIONS
from avparse.utils.lock import hold_folder
from avparse.utils.progress import add_progress_flags, progress_enabled
from avparse.utils.text import count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", type=Path, required=True, metavar="DIR", help="video folder")
    parser.add_argument(
        "--labels",
        type=Path,
        required=True,
        metavar="FILE",
        help="weak labels: LLP CSV (filename<TAB>event_labels), with --task ave Annotations.txt, "
        "with --task unav the UnAV-100 annotation file (unav100_annotations.json)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="ROOT", help="data root to write"
    )
    parser.add_argument(
        "--clip-model",
        default=DEFAULT_CLIP,
        metavar="ID|PATH",
        help="visual teacher: hub id or local folder",
    )
    parser.add_argument(
        "--clap-model",
        default=DEFAULT_CLAP,
        metavar="ID|PATH",
        help="audio teacher: hub id or local folder",
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, metavar="N", help="clips per model call"
    )
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="decoding threads")
    parser.add_argument(
        "--task", choices=("llp", "ave", "unav"), default="llp", help="class vocabulary"
    )
    parser.add_argument(
        "--span",
        choices=SPANS,
        default=None,
        help="window: each video's first 10 s as 10 segments (the LLP/AVE layout); full: the "
        "whole video in one-second segments, any length (feats_CLIP/feats_CLAP segment_feats). "
        "Default: full for --task unav, else window",
    )
    parser.add_argument(
        "--thresholds", type=Path, metavar="FILE", help="thresholds JSON from `avparse calibrate`"
    )
    parser.add_argument(
        "--teacher",
        choices=("modality", "fused"),
        default="modality",
        help="one teacher per modality (VALOR) or one fused teacher for both (ablation)",
    )
    parser.add_argument(
        "--teacher-inputs",
        choices=TEACHER_INPUTS,
        default=TEACHER_INPUTS[0],
        help="published: VALOR's frame sampling and resize and int16 audio, which the published "
        "thresholds were tuned on; 0.1: avparse 0.1's (to continue a root it harvested)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISIONS[0],
        help="teachers' and R(2+1)D-18's arithmetic; bfloat16 is faster on CPUs with AMX/AVX512-BF16 "
        "and on GPUs but changes logits by more than 1e-3 (docs/performance.md)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo finished clips (with only new thresholds/teacher: relabel from saved logits)",
    )
    parser.add_argument(
        "--r2plus1d",
        default=None,
        metavar="WEIGHTS|download",
        help="also write the student's R(2+1)D-18 features (feats/r2plus1d_18) with these weights "
        "(torchvision's r2plus1d_18-91a641e6.pth), or 'download' them through torch.hub",
    )
    parser.add_argument(
        "--snippet-fps", type=float, default=SNIPPET_FPS, help="R(2+1)D-18 frames per second"
    )
    parser.add_argument(
        "--snippet-size", type=int, default=SNIPPET_SIZE, help="R(2+1)D-18 frame side in px"
    )
    parser.add_argument("--report", action="store_true", help="score the harvest on dense labels")
    parser.add_argument(
        "--annotations", type=Path, metavar="DIR", help="LLP annotation folder for --report"
    )
    parser.add_argument("--split", choices=SPLITS[1:], default="val", help="split for --report")
    add_progress_flags(parser)


def run(args: argparse.Namespace) -> int:
    from avparse.errors import AvparseError
    from avparse.harvest.job import HarvestConfig, run_harvest
    from avparse.harvest.outputs import FAILURES, NO_AUDIO_REPORT

    if args.report and args.annotations is None:
        raise AvparseError("--report needs --annotations DIR (the LLP annotation files)")
    if args.report and args.task != "llp":
        raise AvparseError(
            f"--report scores LLP dense labels; it is not available with --task {args.task}"
        )
    if args.task != "unav" and Path(args.labels).suffix.lower() == ".json":
        wants = "AVE's Annotations.txt" if args.task == "ave" else "an LLP CSV"
        raise AvparseError(
            f"{args.labels}: a JSON annotation file, but --task {args.task} reads {wants}; "
            "pass --task unav for UnAV-100's unav100_annotations.json"
        )
    config = HarvestConfig(
        videos=args.videos,
        labels=args.labels,
        out=args.out,
        clip_model=args.clip_model,
        clap_model=args.clap_model,
        device=args.device,
        batch_size=args.batch_size,
        task=args.task,
        thresholds=args.thresholds,
        teacher=args.teacher,
        teacher_inputs=args.teacher_inputs,
        precision=args.precision,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=progress_enabled(args),
        r2plus1d=args.r2plus1d,
        snippet_fps=args.snippet_fps,
        snippet_size=args.snippet_size,
        span=args.span,
    )
    with hold_folder(args.out, flag="--out"):  # one job per root (torchrun ranks share it)
        result = run_harvest(config)
    where = f" (rank {result.rank} of {result.world})" if result.world > 1 else ""
    print(
        f"harvested {count(result.harvested, 'clip')}, R(2+1)D-18 features for {result.motion}, "
        f"relabelled {result.relabelled}, "
        f"skipped {result.skipped} finished, {len(result.failures)} failed{where} "
        f"in {result.seconds:.1f} s ({result.clips_per_second:.2f} clips/s)"
    )
    if result.no_audio:
        print(
            f"{count(len(result.no_audio), 'clip')} {_have(len(result.no_audio))} no audio: "
            f"harvested as silence ({NO_AUDIO_REPORT})"
        )
    if result.no_video:
        print(
            f"{count(len(result.no_video), 'file')} {_have(len(result.no_video))} no picture: "
            "harvested as heard only "
            "(visual labels 0, CLIP/no_video)"
        )
    if result.segments:
        print(
            f"{count(result.segments, 'one-second segment')} in "
            f"{count(result.harvested, 'whole video')}"
        )
    if not result.labelled and args.task == "unav":
        # `avparse calibrate` has no UnAV-100 task: the temporal teacher labels such a root.
        print(
            "no thresholds for 'unav': wrote features and logits only; label the root with "
            "UWAV's temporal teacher (`avparse teacher label`, docs/teacher.md), or harvest "
            "again with --thresholds FILE to write the frame-wise labels"
        )
    elif not result.labelled:
        print(
            f"no thresholds for {args.task!r}: wrote features and logits only; run "
            "`avparse calibrate` and harvest again with --thresholds to write labels"
        )
    if args.report and result.rank == 0:
        from avparse.eval import format_scores
        from avparse.harvest.report import score_harvest
        from avparse.utils.atomic import write_json

        score = score_harvest(args.out, args.annotations, args.split)
        print(
            format_scores(
                score.scores,
                title=f"harvest vs dense {args.split} labels ({count(score.scored, 'clip')}, "
                f"{score.missing} missing):",
            )
        )
        write_json(Path(args.out) / f"harvest_report_{args.split}.json", score.to_json())
    if result.failures:
        print(
            f"avparse harvest: {count(len(result.failures), 'clip')} failed "
            f"(see {Path(args.out) / FAILURES})",
            file=sys.stderr,
        )
        return 1
    return 0


def _have(n: int) -> str:
    return "has" if n == 1 else "have"
