"""``avparse calibrate``: per-class teacher thresholds from a harvest's logits and val labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from avparse.data.layout import SPLITS
from avparse.teachers.calibrate import MIN_CLIPS
from avparse.utils.text import count


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--harvest",
        type=Path,
        required=True,
        metavar="ROOT",
        help="root written by avparse harvest",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        required=True,
        metavar="DIR",
        help="LLP annotation folder (AVVP_*.csv) or AVE root (Annotations.txt + splits)",
    )
    parser.add_argument("--split", choices=SPLITS, default="val", help="split with dense labels")
    parser.add_argument("--task", choices=("llp", "ave"), default="llp", help="class vocabulary")
    parser.add_argument(
        "--thresholds", type=Path, metavar="FILE", help="starting thresholds (reported as 'before')"
    )
    parser.add_argument(
        "--min-clips",
        type=int,
        default=MIN_CLIPS,
        metavar="N",
        help="fewest clips with a true segment of a class for a threshold of its own; a class "
        "seen in fewer keeps its current threshold, or takes the one pooled over all classes",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="thresholds JSON to write"
    )


def run(args: argparse.Namespace) -> int:
    from avparse.data.roots import root_task
    from avparse.errors import AvparseError
    from avparse.harvest.calibration import calibrate_harvest, write_thresholds

    if root_task(args.annotations) == "unav" or args.annotations.suffix.lower() == ".json":
        # task_hint's "pass --task unav" does not apply: calibrate has no UnAV-100 task.
        raise AvparseError(
            f"{args.annotations}: UnAV-100 annotations; calibrate chooses thresholds on LLP or "
            "AVE labels (--task llp|ave). A UnAV-100 root is labelled by UWAV's temporal "
            "teacher (`avparse teacher label`, docs/teacher.md)"
        )
    if args.out.is_dir():  # before the work, not after it
        raise AvparseError(f"--out {args.out}: is a folder; give the thresholds file's name")

    cal = calibrate_harvest(
        args.harvest, args.annotations, split=args.split, task=args.task,
        thresholds=args.thresholds, min_clips=args.min_clips,
    )  # fmt: skip
    write_thresholds(cal, args.out)
    print(f"calibrated on {count(cal.clips, args.split + ' clip')} ({cal.missing} not harvested)")
    for m, rows in cal.classes.items():
        known = [r for r in rows if r.positives]
        before = [r.f_before for r in known if r.f_before is not None]
        after = sum(r.f_after for r in known) / max(len(known), 1)
        line = f"{m}: mean class segment F {100 * after:.1f}"
        if len(before) == len(known) and known:
            line += f" (was {100 * sum(before) / len(before):.1f})"
        print(line + f" over {count(len(known), 'class', 'classes')} with true segments")
        thin = {src: sum(r.source == src for r in rows) for src in ("kept", "pooled")}
        if any(thin.values()):
            print(
                f"  {thin['kept']} kept and {thin['pooled']} pooled thresholds: classes seen in "
                f"fewer than {args.min_clips} clip{'' if args.min_clips == 1 else 's'}"
            )
    print(f"wrote {args.out}")
    return 0
