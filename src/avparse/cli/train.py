"""``avparse train``: train the student on a data root (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from avparse.utils.lock import hold_folder
from avparse.utils.progress import add_progress_flags, progress_enabled
from avparse.utils.speedflags import add_speed_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avparse.model.config import PRESETS  # no torch: the registry is plain data

    parser.add_argument("--data", required=True, type=Path, help="data root (published layout)")
    parser.add_argument(
        "--preset",
        default=None,
        help=f"{', '.join(PRESETS)}; valor unless --config names one",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder; runs/PRESET when omitted"
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="packed feature store; DATA/packed when omitted (a read-only DATA: the user cache)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help='JSON recipe {"preset", "model": {...}, "train": {...}}; flags override it',
    )
    parser.add_argument(
        "--task",
        default=None,
        help="training task: llp, ave, unav (UnAV-100, videos of any length; others register "
        "in avparse.train.tasks); the preset's, else llp, when omitted",
    )
    parser.add_argument(
        "--loss", default=None, help="han, valor, valor-video or uwav; the preset's when omitted"
    )
    parser.add_argument(
        "--harvest",
        choices=("frame", "temporal"),
        default=None,
        help="segment labels of the valor / uwav losses: the CLIP/CLAP teachers' (frame, from "
        "`avparse harvest`) or UWAV's temporal teacher's (temporal, from `avparse teacher "
        "label`, in DATA/temporal); the preset's when omitted (uwav, uwav++: temporal)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs (the preset's recipe when omitted, e.g. 60 for valor, 80 for uwav)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size")
    parser.add_argument(
        "--lr", type=float, default=None, help="peak learning rate (the preset's when omitted)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (the preset's when omitted)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model (or training) config field, e.g. --set d_model=256",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train")
    add_speed_flags(parser, saved=True)
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard events")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    add_progress_flags(parser)


def run(args: argparse.Namespace) -> int:
    from avparse.train.runfolder import default_out

    out = args.out if args.out is not None else default_out(args.preset, args.config)
    with hold_folder(out, flag="--out"):  # one job per run folder, before it is even read
        return _run(args, out)


def _run(args: argparse.Namespace, out: Path) -> int:
    from avparse.train.loop import RunFailed, train
    from avparse.train.runfolder import configs_for
    from avparse.train.tasks import get_task
    from avparse.utils.distributed import claim_failure, finish_failure

    flags = {"task": args.task, "loss": args.loss, "epochs": args.epochs, "harvest": args.harvest,
             "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "precision": args.precision, "compile": True if args.compile else None}  # fmt: skip
    notes: list[str] = []
    model_cfg, train_cfg, preset = configs_for(
        out, preset=args.preset, config_file=args.config, flags=flags, sets=args.set,
        resume=args.resume, overwrite=args.overwrite, notes=notes,
    )  # fmt: skip
    main = int(os.environ.get("RANK", "0")) == 0
    for note in notes if main else ():
        print(f"note: {note}", file=sys.stderr)
    try:
        result = train(
            args.data, out, model_cfg, train_cfg, preset=preset, store=args.store,
            device=args.device, resume=args.resume, overwrite=args.overwrite,
            tensorboard=args.tensorboard, progress=progress_enabled(args),
            epoch_lines=not args.quiet,
        )  # fmt: skip
    except RunFailed as exc:
        if claim_failure(str(exc)):  # every rank stops; the line is printed once
            print(f"avparse train: failed: {exc}", file=sys.stderr)
            finish_failure()
        return 1
    if main:
        from avparse.eval import format_scores

        task = get_task(train_cfg.task)
        if not args.quiet:
            print(
                f"best epoch {result.best_epoch}: val {task.selection_metric} "
                f"{result.best_score:.2f}"
            )
            print(f"model: {out / 'model'}")
        if result.test_scores is not None:
            print("test:")
            print(format_scores(result.test_scores))
    return 0
