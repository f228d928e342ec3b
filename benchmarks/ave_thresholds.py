"""How good are the AVE harvests with per-class vs minimum-clips thresholds (no training).

    .venv/bin/python benchmarks/ave_thresholds.py [--seeds 0 1 2] [--min-clips 1 10]

For each seed, draws the synthetic AVE set of ``benchmarks/ave.py`` (1,200 / 200 / 400 clips,
teacher logits only: fast), calibrates the teachers on val with each ``--min-clips`` (1: every
class with a true segment gets its own threshold, the 0.1 behaviour; 10: the default) and scores
the harvests as a prediction on each split: segment accuracy of "the clip's class where the
audio AND the visual harvest fire, else background" against the truth. Train is what VALOR
learns from; a val score far above train and test means the thresholds fit val's noise.
"""

from __future__ import annotations

import argparse

import numpy as np


def harvest_accuracy(split) -> float:
    """Percent of segments where "both harvests fire for the clip's class" equals the truth."""
    cls = split.weak.argmax(1)
    rows = np.arange(len(cls))
    hard = {m: split.labels["modality"][m][0] for m in ("audio", "visual")}
    fired = (hard["audio"][rows, :, cls] > 0) & (hard["visual"][rows, :, cls] > 0)
    event = split.audio[rows, :, cls] & split.visual[rows, :, cls]
    return float(100 * (fired == event).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--min-clips", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--clips", type=int, default=1200)
    parser.add_argument("--val-clips", type=int, default=200)
    parser.add_argument("--test-clips", type=int, default=400)
    args = parser.parse_args(argv)

    from avparse.synthetic import generate_arrays

    print(f"{'seed':<6}{'min_clips':>10}{'train':>8}{'val':>8}{'test':>8}")
    for seed in args.seeds:
        for min_clips in args.min_clips:
            splits = generate_arrays(
                n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
                features=None, seed=seed, task="ave", min_clips=min_clips,
            )  # fmt: skip
            acc = [harvest_accuracy(splits[s]) for s in ("train", "val", "test")]
            print(f"{seed:<6}{min_clips:>10}" + "".join(f"{a:>8.2f}" for a in acc), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
