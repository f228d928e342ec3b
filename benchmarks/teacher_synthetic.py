"""Does the temporal teacher help on the synthetic worlds? Labels and students, over seeds.

Per seed: a UnAV-like root (``generate_unav``, CLIP / CLAP segment features) and an LLP-like
root with segment features from the same name-based world (``generate_llp(segments=True)``),
so the class prototypes are shared by name; the class text embeddings of both vocabularies are
the synthetic text tower's (:func:`avparse.synthetic.concepts.text_embeddings`, the ones the
frame-wise teachers score against), written where ``avparse teacher`` looks for them under the
text-model names ``synthetic/clip`` and ``synthetic/clap``. Then, as a user runs it:

1. ``avparse teacher train`` on the UnAV-like root (a narrowed teacher, see ``--hidden`` ...),
2. ``avparse teacher label`` of the LLP-like root (thresholds on its val split),
3. the labels' scores on LLP test: frame-wise harvest vs temporal teacher (``--report``),
4. the student (the demo's narrowed VALOR network and schedule) with ``--loss valor`` and
   ``--loss uwav``, each on the frame-wise and on the temporal harvest.

Nothing is tuned on the numbers: the world is the default ``SyntheticConfig``, the teacher's
recipe is UWAV's (loss, optimiser, weights) at a smaller width and fewer epochs so it runs on a
CPU. Results go to ``--out/results.json`` and are printed as a table.

Run::

    python benchmarks/teacher_synthetic.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SYNTHETIC_TEXT = {"audio": "synthetic/clap", "visual": "synthetic/clip"}
KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "evt_type")


def write_text_embeddings(root: Path, vocab) -> None:
    from avparse.synthetic.concepts import text_embeddings
    from avparse.synthetic.config import SyntheticConfig
    from avparse.temporal.text import cache_path

    cfg = SyntheticConfig()
    noise = math.hypot(cfg.zero_shot_noise, cfg.zero_shot_confusion)  # the world's text tower
    for m, source in SYNTHETIC_TEXT.items():
        path = cache_path(root, m, source, vocab)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, text_embeddings(vocab.names, m, noise=noise))


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    from avparse.demo import DemoConfig, Method, method_configs
    from avparse.synthetic import generate_llp
    from avparse.synthetic.unav import generate_unav
    from avparse.temporal.label import label_root, report
    from avparse.temporal.pretrain import pretrain
    from avparse.train.loop import train
    from avparse.vocab import LLP, UNAV

    out = Path(args.out) / f"seed{seed}"
    t0 = time.perf_counter()
    unav = generate_unav(out / "unav", n_train=args.unav_train, n_val=args.unav_val,
                         n_test=args.unav_test, features="segments", seed=seed)  # fmt: skip
    llp = generate_llp(out / "llp", n_train=args.clips, n_val=args.val_clips,
                       n_test=args.test_clips, features="valor", seed=seed, segments=True)  # fmt: skip
    write_text_embeddings(unav, UNAV)
    write_text_embeddings(llp, LLP)
    sets = [f"clip_text={SYNTHETIC_TEXT['visual']}", f"clap_text={SYNTHETIC_TEXT['audio']}",
            f"hidden_dim={args.hidden}", f"nhead={args.heads}", f"ff_dim={2 * args.hidden}",
            f"num_layers={args.layers}", f"epochs={args.teacher_epochs}",
            f"warmup={max(1, args.teacher_epochs // 8)}"]  # fmt: skip
    run = pretrain(unav, out / "teacher", preset="uwav", sets=sets, progress=False,
                   overwrite=True)  # fmt: skip
    manifest = label_root(out / "teacher", llp, overwrite=True)
    labels = report(llp, "test")
    result: dict = {"teacher_unav": {"val": run.get("val_scores"), "test": run.get("test_scores"),
                                     "best_epoch": run.get("best_epoch")},
                    "labels_test": labels, "thresholds": manifest["thresholds"],
                    "students": {}}  # fmt: skip
    demo = DemoConfig(out=out / "students", seed=seed, notes=False, epochs=args.student_epochs)
    for loss in ("valor", "uwav"):
        for harvest in ("frame", "temporal"):
            model_cfg, train_cfg = method_configs(demo, Method(loss, loss, "valor", loss=loss))
            train_cfg = type(train_cfg).from_dict({**train_cfg.to_dict(), "harvest": harvest})
            res = train(llp, out / "students" / f"{loss}-{harvest}", model_cfg, train_cfg,
                        preset="valor", overwrite=True, progress=False)  # fmt: skip
            result["students"][f"{loss}/{harvest}"] = res.test_scores
            print(f"seed {seed} student {loss}/{harvest}: "
                  + "  ".join(f"{k} {res.test_scores[k]:.2f}" for k in KEYS), flush=True)  # fmt: skip
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "avparse-teacher-synth"))
    p.add_argument("--unav-train", type=int, default=2000)
    p.add_argument("--unav-val", type=int, default=300)
    p.add_argument("--unav-test", type=int, default=300)
    p.add_argument("--clips", type=int, default=2000, help="LLP-like train clips (the demo's)")
    p.add_argument("--val-clips", type=int, default=300)
    p.add_argument("--test-clips", type=int, default=500)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--teacher-epochs", type=int, default=20)
    p.add_argument("--student-epochs", type=int, default=20, help="the demo's")
    args = p.parse_args()
    results = {}
    path = Path(args.out) / "results.json"
    for seed in args.seeds:
        results[seed] = run_seed(args, seed)
        lab = results[seed]["labels_test"]
        print(f"seed {seed} labels on LLP test: "
              + "; ".join(f"{h}: " + " ".join(f"{k} {s[k]:.2f}" for k in KEYS)
                          for h, s in lab.items()), flush=True)  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
