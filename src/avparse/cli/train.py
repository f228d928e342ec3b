"""``avparse train``: train the student on a data root (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from avparse.errors import AvparseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="data root (published layout)")
    parser.add_argument(
        "--preset",
        default=None,
        help="han, valor, valor+, valor++ or tiny; valor unless --config names one",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="run folder; runs/PRESET when omitted"
    )
    parser.add_argument(
        "--store", type=Path, default=None, help="packed feature store; DATA/packed when omitted"
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
        help="training task (llp; others register in avparse.train.tasks); llp when omitted",
    )
    parser.add_argument(
        "--loss", default=None, help="han, valor or valor-video; the preset's when omitted"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs (the preset's recipe when omitted: 60)"
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
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard events")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars or epoch lines"
    )


def split_sets(items: list[str], preset: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set KEY=VALUE`` items -> (model overrides, training overrides), typed like the field."""
    from dataclasses import fields

    from avparse.model.config import ModelConfig, model_config, parse_value
    from avparse.train.recipe import TrainConfig, recipe

    base_model, base_train = model_config(preset), recipe(preset)
    model_keys = {f.name for f in fields(ModelConfig)}
    train_keys = {f.name for f in fields(TrainConfig)}
    model_over: dict[str, Any] = {}
    train_over: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise AvparseError(f"--set {item!r}: expected KEY=VALUE")
        try:
            if key in model_keys:
                model_over[key] = parse_value(text, getattr(base_model, key))
            elif key in train_keys:
                train_over[key] = parse_value(text, getattr(base_train, key))
            else:
                raise AvparseError(f"--set {item!r}: unknown config field {key!r}")
        except ValueError:
            raise AvparseError(f"--set {item!r}: cannot parse value {text!r}") from None
    return model_over, train_over


def parse_sets(items: list[str], preset: str | None) -> dict[str, Any]:
    """Model-config overrides only (``avparse evaluate`` of a .pt checkpoint)."""
    model_over, train_over = split_sets(items, preset)
    if train_over:
        raise AvparseError(f"--set {next(iter(train_over))!r} is a training field, not a model one")
    return model_over


def build_configs(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """Model and training configs from preset < config file < flags < --set."""
    from avparse.model.config import model_config
    from avparse.train.recipe import load_config_file, recipe

    file = load_config_file(args.config) if args.config else {}
    preset = args.preset or file.get("preset") or "valor"
    model_over: dict[str, Any] = dict(file.get("model", {}))
    train_over: dict[str, Any] = dict(file.get("train", {}))
    flags = {"task": args.task, "loss": args.loss, "epochs": args.epochs,
             "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed}  # fmt: skip
    train_over.update({k: v for k, v in flags.items() if v is not None})
    set_model, set_train = split_sets(args.set, preset)
    model_over.update(set_model)
    train_over.update(set_train)
    train_cfg = recipe(preset, train_over)
    if "vocabulary" not in model_over and "class_names" not in model_over:
        from avparse.train.tasks import get_task

        model_over["vocabulary"] = get_task(train_cfg.task).vocabulary  # e.g. --task ave: 28
    return model_config(preset, model_over), train_cfg, preset


def run(args: argparse.Namespace) -> int:
    from avparse.train.loop import read_run, run_configs, train
    from avparse.train.tasks import get_task

    changed = bool(args.set or args.config or any(
        getattr(args, k) is not None for k in ("preset", "task", "loss", "epochs", "batch_size", "lr", "seed")
    ))  # fmt: skip
    out = args.out
    if out is None:
        out = Path("runs") / (args.preset or "valor")
    if args.resume and not args.overwrite and read_run(out) is not None:
        model_cfg, train_cfg, preset = run_configs(out)
        if changed:
            fresh_model, fresh_train, _ = build_configs(args)
            if fresh_model != model_cfg or fresh_train != train_cfg:
                raise AvparseError(
                    f"{out}: --resume continues the run with its saved settings; drop the "
                    "changed flags or use --overwrite"
                )
    else:
        model_cfg, train_cfg, preset = build_configs(args)
    main = int(os.environ.get("RANK", "0")) == 0
    result = train(
        args.data, out, model_cfg, train_cfg, preset=preset, store=args.store,
        device=args.device, resume=args.resume, overwrite=args.overwrite,
        tensorboard=args.tensorboard, progress=not args.no_progress and main,
    )  # fmt: skip
    if main:
        from avparse.eval import format_scores

        task = get_task(train_cfg.task)
        print(
            f"best epoch {result.best_epoch}: val {task.selection_metric} {result.best_score:.2f}"
        )
        print(f"model: {out / 'model'}")
        if result.test_scores is not None:
            print("test:")
            print(format_scores(result.test_scores))
    return 0
