"""``avparse teacher``: UWAV's temporal teacher (``train`` on dense audio-visual labels,
``label`` a data root with it, ``label --report`` to score harvests' labels side by side).

Library code is imported inside the run functions, so ``avparse teacher --help`` stays light.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from avparse.cli import DefaultsHelpFormatter
from avparse.utils.progress import add_progress_flags, progress_enabled


def _add_train(parser: argparse.ArgumentParser) -> None:
    from avparse.temporal.config import TEACHER_PRESETS

    parser.add_argument("--data", type=Path, required=True, metavar="ROOT",
                        help="root with dense audio-visual labels in every split (UnAV-100, AVE) "
                        "and CLIP / CLAP segment embeddings")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, metavar="RUN", help="run folder")
    parser.add_argument("--preset", default=None, choices=sorted(TEACHER_PRESETS),
                        help="architecture and recipe (uwav; a resumed run: its own)")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a teacher or recipe setting (e.g. epochs=10, "
                        "clip_text=FOLDER); repeatable")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda (one per torchrun process)")
    parser.add_argument("--resume", action="store_true", help="continue a run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    add_progress_flags(parser)


def _run_train(args: argparse.Namespace) -> int:
    from avparse.temporal.pretrain import TeacherRunFailed, pretrain
    from avparse.utils.distributed import claim_failure, finish_failure
    from avparse.utils.lock import hold_folder

    main = int(os.environ.get("RANK", "0")) == 0
    try:
        with hold_folder(args.out, flag="--out"):  # one job per run folder
            run = pretrain(
                args.data, args.out, preset=args.preset, sets=args.set, device=args.device,
                resume=args.resume, overwrite=args.overwrite, progress=progress_enabled(args),
            )  # fmt: skip
    except TeacherRunFailed as exc:
        if claim_failure(str(exc)):  # every rank stops; the line is printed once
            print(f"avparse teacher train: failed: {exc}", file=sys.stderr)
            finish_failure()
        return 1
    if main and not args.quiet:
        val, test = run.get("val_scores") or {}, run.get("test_scores") or {}
        line = f"best epoch {run.get('best_epoch')}: val seg_av {val.get('seg_av', 0):.2f}"
        line += f" evt_av {val.get('evt_av', 0):.2f}"
        if test:
            line += f"; test seg_av {test['seg_av']:.2f} evt_av {test['evt_av']:.2f}"
        print(f"{line}\nteacher: {args.out / 'model'}")
    return 0


def _add_label(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="ROOT",
                        help="root to label (LLP, AVE, UnAV-100) with CLIP / CLAP segment "
                        "embeddings")  # fmt: skip
    parser.add_argument("--teacher", type=Path, metavar="RUN_OR_PT",
                        help="teacher run folder, model folder, or UWAV checkpoint_best.pt "
                        "(with --preset); not needed with --report")  # fmt: skip
    parser.add_argument("--preset", default=None, help="architecture of a .pt checkpoint (uwav)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="teacher setting of a .pt checkpoint (e.g. clip_text=FOLDER)",
    )
    parser.add_argument("--thresholds", default="val", metavar="HOW",
                        help="val (per class on the val split's dense labels), val-pooled "
                        "(one for all classes), a NUMBER (logit threshold for all classes), or "
                        "a thresholds FILE (another root's temporal/thresholds.json)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=64, help="clips per forward pass")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="arithmetic of the teacher's forward passes (bfloat16 autocast)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace ROOT/temporal")
    parser.add_argument("--report", action="store_true",
                        help="score the harvests' labels (frame-wise and temporal) against "
                        "the --split's dense labels instead of labelling")  # fmt: skip
    parser.add_argument("--split", default="test", help="split of --report")
    add_progress_flags(parser)


def _print_scores(name: str, scores: dict[str, float]) -> None:
    keys = ("seg_a", "seg_v", "seg_av", "seg_type", "evt_type")
    print(f"{name:10s} " + "  ".join(f"{k} {scores[k]:6.2f}" for k in keys))


def _run_label(args: argparse.Namespace) -> int:
    from avparse.errors import AvparseError
    from avparse.temporal.label import label_root, report

    if args.report:
        scores = report(args.data, args.split)
        print(f"labels of the harvests vs the {args.split} split's dense labels (percent):")
        for name, s in scores.items():
            _print_scores(name, s)
        return 0
    if args.teacher is None:
        raise AvparseError("--teacher is needed (a run folder, model folder or .pt checkpoint)")
    from avparse.temporal.pretrain import split_sets

    model_sets, rest = split_sets(args.set)
    if rest:
        raise AvparseError(f"--set {next(iter(rest))}: not a teacher setting")
    from avparse.utils.lock import hold_folder

    with hold_folder(args.data, flag="--data"):  # one job writing the root (label, harvest)
        manifest = label_root(
            args.teacher, args.data, preset=args.preset, overrides=model_sets or None,
            thresholds=args.thresholds, device=args.device, batch_size=args.batch_size,
            overwrite=args.overwrite, progress=progress_enabled(args),
            precision=args.precision,
        )  # fmt: skip
    if not args.quiet:
        splits = ", ".join(f"{n} {s}" for s, n in manifest["splits"].items())
        print(f"{args.data / 'temporal'}: labelled {splits}; thresholds {manifest['thresholds']}")
        for split, s in manifest["label_scores"].items():
            _print_scores(f"labels {split}", s)
        from avparse.data.roots import root_task

        # A UnAV-100 root has no LLP features: its presets read the segment embeddings.
        task = {"unav": "--task unav --preset unav-clip ", "ave": "--task ave "}.get(
            root_task(args.data) or "llp", ""
        )
        print(f"train on them: avparse train --data {args.data} {task}--harvest temporal "
              "--loss uwav (or --loss valor)")  # fmt: skip
    return 0


SUBCOMMANDS: dict[
    str,
    tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
] = {
    "train": ("pretrain the temporal teacher on dense audio-visual labels", _add_train,
              _run_train),
    "label": ("label a root with a teacher (ROOT/temporal), or --report the labels' scores",
              _add_label, _run_label),
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="teacher_command", metavar="SUBCOMMAND")
    for name, (help_text, add, run_fn) in SUBCOMMANDS.items():
        sp = sub.add_parser(
            name, help=help_text, description=help_text,
            formatter_class=DefaultsHelpFormatter,
        )  # fmt: skip
        add(sp)
        sp.set_defaults(_teacher_run=run_fn)
    parser.set_defaults(_teacher_parser=parser)


def run(args: argparse.Namespace) -> int:
    run_fn = getattr(args, "_teacher_run", None)
    if run_fn is None:
        args._teacher_parser.print_help(sys.stderr)
        return 2
    return int(run_fn(args) or 0)
