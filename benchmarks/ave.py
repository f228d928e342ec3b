"""AVE on synthetic data: weak-label baseline (HAN) vs VALOR (harvests), plus full supervision.

    .venv/bin/python benchmarks/ave.py [--out runs/bench_ave] [--clips 1200] [--epochs 40]
    .venv/bin/python benchmarks/ave.py --annotations ../shared/data/ave   # real clips and labels

Generates (or reuses) an AVE data root with synthetic features (from AVE-like statistics, or
from the real ``Annotations.txt`` and splits with ``--annotations``), trains the same narrowed
student with each loss through the ``ave`` task, and prints test segment accuracy side by side;
``results.json`` holds accuracy and per-class accuracy of each method (val scores of the selected
epoch under ``val``) and, under ``harvest``, the teachers' harvests scored as predictions (the
clip's class where the audio AND the visual harvest fire, else background) on each split: how
good the labels VALOR learns from are. Runs finished with the same settings are reused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("han", "valor", "supervised")


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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from avparse.model.config import model_config
    from avparse.synthetic import generate_ave
    from avparse.train.loop import read_run, train
    from avparse.train.recipe import recipe
    from avparse.utils.atomic import write_json

    data = generate_ave(
        args.out / "data", n_train=args.clips, n_val=args.val_clips, n_test=args.test_clips,
        annotations=args.annotations, per_split=args.per_split, features=args.features,
        seed=args.seed, overwrite=True,
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
        folder = args.out / method
        run = read_run(folder)
        same = (
            run is not None
            and run.get("status") == "finished"
            and run.get("model") == model_cfg.to_dict()
            and run.get("train") == json.loads(json.dumps(train_cfg.to_dict()))
        )
        result = train(
            data, folder, model_cfg, train_cfg, preset=preset, resume=same,
            overwrite=not same, progress=False,
        )  # fmt: skip
        results[method] = {**result.test_scores, "val": result.val_scores}
        print(f"{method:<11} test accuracy {result.test_scores['accuracy']:6.2f}", flush=True)
    results["harvest"] = harvest_accuracy(data)
    write_json(args.out / "results.json", results)
    print(f"\n{'method':<11}{'accuracy':>10}{'background':>12}{'val':>8}")
    for method in args.methods:
        scores = results[method]
        print(f"{method:<11}{scores['accuracy']:>10.2f}{scores.get('acc/background', 0):>12.2f}"
              f"{scores['val'].get('accuracy', float('nan')):>8.2f}")  # fmt: skip
    harvest = results["harvest"]
    print("harvests as a prediction (audio AND visual): "
          + ", ".join(f"{s} {a:.2f}" for s, a in harvest.items()))  # fmt: skip
    print(f"wrote {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
