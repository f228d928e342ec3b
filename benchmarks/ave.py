"""AVE on synthetic data: weak-label baseline (HAN) vs VALOR vs UWAV, plus full supervision.

    .venv/bin/python benchmarks/ave.py [--out runs/bench_ave] [--clips 1200] [--epochs 40]
    .venv/bin/python benchmarks/ave.py --seeds 0 1 2            # mean and spread over worlds
    .venv/bin/python benchmarks/ave.py --annotations ../shared/data/ave   # real clips and labels

Per seed (of the synthetic world; the training seed is the preset's own) generates (or reuses)
an AVE data root with synthetic features (from AVE-like statistics, or from the real
``Annotations.txt`` and splits with ``--annotations``) under ``OUT/seed<N>``, trains the same
narrowed student with each loss through the ``ave`` task, and prints test segment accuracy side
by side, then mean, standard deviation and range over the seeds. ``results.json`` holds, per
seed, accuracy and per-class accuracy of each method (val scores of the selected epoch under
``val``) and, under ``harvest``, the teachers' harvests scored as predictions (the clip's class
where the audio AND the visual harvest fire, else background) on each split: how good the
labels VALOR learns from are. Runs finished with the same settings are reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("han", "valor", "uwav", "supervised")
"""Losses of the ``ave`` task compared (``--methods`` picks)."""


def harvest_accuracy(root: Path) -> dict[str, float]:
    """Segment accuracy of the harvests used as a prediction (audio AND visual harvest of the
    clip's class), per split: the ceiling VALOR's segment targets set."""
    from avparse.data.ave import AVEAnnotations
    from avparse.data.layout import HARVEST_FOLDERS
    from avparse.eval.ave import segment_accuracy
    from avparse.vocab import AVE

    out = {}
    for split in ("train", "val", "test"):
        clips = AVEAnnotations(root, AVE).split(split)
        cls = clips.labels.argmax(1)
        rows = np.arange(len(cls))
        fired = np.ones((len(cls), clips.segment_labels.shape[1]), dtype=bool)
        for folder in (HARVEST_FOLDERS["audio"], HARVEST_FOLDERS["visual"]):
            h = np.stack([np.load(root / folder / f"{clip}.npy") for clip in clips.ids])
            fired &= h[rows, :, cls] > 0
        pred = np.where(fired, cls[:, None], len(AVE))
        out[split] = segment_accuracy(pred, clips.segment_labels)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_ave"))
    parser.add_argument("--annotations", type=Path, default=None, help="real AVE folder")
    parser.add_argument("--per-split", type=int, default=None, help="first N clips per split")
    parser.add_argument("--clips", type=int, default=1200, help="synthetic training clips")
    parser.add_argument("--val-clips", type=int, default=200)
    parser.add_argument("--test-clips", type=int, default=400)
    parser.add_argument("--features", choices=("valor", "valor++"), default="valor")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)

    from avparse.utils.atomic import write_json

    results = {seed: run_seed(args, seed) for seed in args.seeds}
    write_json(args.out / "results.json", {str(s): r for s, r in results.items()})
    print(f"\ntest accuracy, mean ± std over seeds {args.seeds} [min, max]")
    for method in args.methods:
        acc = np.asarray([results[s][method]["accuracy"] for s in args.seeds])
        std = acc.std(ddof=1) if len(acc) > 1 else 0.0
        print(f"{method:<11}{acc.mean():7.2f} ± {std:4.2f} [{acc.min():.2f}, {acc.max():.2f}]  "
              + " ".join(f"{a:.2f}" for a in acc))  # fmt: skip
    for split in ("train", "val", "test"):
        h = [results[s]["harvest"][split] for s in args.seeds]
        print(f"harvests as a prediction, {split}: " + ", ".join(f"{a:.2f}" for a in h))
    print(f"wrote {args.out / 'results.json'}")
    return 0


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    """Data, every method and the harvests' accuracy of one synthetic world."""
    from avparse.model.config import model_config
    from avparse.synthetic import COMPLETE_MARKER, generate_ave
    from avparse.train.loop import read_run, train
    from avparse.train.recipe import recipe

    out = args.out / f"seed{seed}"
    marker = out / "data" / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns if marker.is_file() else None
    data = generate_ave(
        out / "data", n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
        annotations=args.annotations, per_split=args.per_split, features=args.features,
        seed=seed, overwrite=True,
    )  # fmt: skip
    preset = "valor" if args.features == "valor" else "valor++"
    model_cfg = model_config(
        preset,
        {"vocabulary": "ave", "d_model": args.d_model, "nhead": 4,
         "dim_feedforward": 2 * args.d_model, "num_layers": 1},
    )  # fmt: skip
    results = {}
    for method in args.methods:
        train_cfg = recipe(preset, {"task": "ave", "loss": method, "epochs": args.epochs,
                                    "warmup": 2, "lr": 1e-3, "lr_min": 1e-5, "batch_size": 32})  # fmt: skip
        folder = out / method
        run = read_run(folder)
        same = (
            before == marker.stat().st_mtime_ns  # runs are reused on the same data only
            and run is not None
            and run.get("status") == "finished"
            and run.get("model") == model_cfg.to_dict()
            and run.get("train") == json.loads(json.dumps(train_cfg.to_dict()))
        )
        result = train(
            data, folder, model_cfg, train_cfg, preset=preset, resume=same,
            overwrite=not same, progress=False,
        )  # fmt: skip
        results[method] = {**result.test_scores, "val": result.val_scores}
        print(f"seed {seed} {method:<11} test accuracy {result.test_scores['accuracy']:6.2f}",
              flush=True)  # fmt: skip
    results["harvest"] = harvest_accuracy(data)
    print(f"\nseed {seed}\n{'method':<11}{'accuracy':>10}{'background':>12}{'val':>8}")
    for method in args.methods:
        scores = results[method]
        print(f"{method:<11}{scores['accuracy']:>10.2f}{scores.get('acc/background', 0):>12.2f}"
              f"{scores['val'].get('accuracy', float('nan')):>8.2f}")  # fmt: skip
    harvest = results["harvest"]
    print("harvests as a prediction (audio AND visual): "
          + ", ".join(f"{s} {a:.2f}" for s, a in harvest.items()))  # fmt: skip
    return results


if __name__ == "__main__":
    raise SystemExit(main())
