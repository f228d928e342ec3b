"""``avparse teacher train``: pretrain the temporal teacher on dense audio-visual labels.

Reference section 12 (UWAV's ``main_pretrain.py``, ``scripts/train_transformer.sh``): the loss
of :func:`avparse.temporal.network.pretrain_loss` (classes present in a clip weighted 5), AdamW
with betas (0.5, 0.999), weight decay 1e-3, warm-up 10 epochs then cosine from 1e-4 to 1e-5
over 80 epochs, batch 64, gradient norm clipped at 2.0, seed 1000; the best epoch is the one
with the highest validation segment-level audio-visual F-score, a segment-class pair being
predicted when ``sigmoid(z_a) * sigmoid(z_v) >= 0.5``. Batches pad to their longest clip with a
mask. Any root whose train split has dense audio-visual labels works: UnAV-100 (UWAV's), AVE.

The run folder is ``avparse train``'s (:mod:`avparse.train.runfolder`): ``run.json`` (status,
preset, ``teacher`` and ``train`` configs), ``checkpoint.pt`` (resumable, every epoch),
``log.jsonl``, ``model/`` (the best teacher, ``config.json`` + ``model.safetensors``) and
``test_metrics.json``. Under ``torchrun`` each process takes its share of every batch
(gradients averaged by DDP); rank 0 evaluates and writes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avparse.data.ragged import Ragged
from avparse.errors import AvparseError
from avparse.temporal.checkpoint import RUN_MODEL_DIR, load_folder, save_teacher
from avparse.temporal.config import TeacherConfig, get_teacher_preset, teacher_config
from avparse.temporal.data import TeacherSplit, load_split, root_kind
from avparse.temporal.infer import split_logits, text_tensors
from avparse.temporal.label import score_labels
from avparse.temporal.network import TemporalTeacher, pretrain_loss
from avparse.train import runfolder
from avparse.train.checkpoint import (
    Best,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_all,
    set_rng_state,
)
from avparse.train.recipe import TrainConfig, build_optimizer
from avparse.utils import distributed as D
from avparse.utils.atomic import write_json, write_text
from avparse.utils.progress import progress as progress_bar
from avparse.vocab import get_vocabulary

SELECTION = "seg_av"
"""Validation score that selects the best epoch (UWAV's ``Seg-av``)."""
SCORE_KEYS = ("seg_av", "evt_av")


TRAIN_FIELDS = (
    "epochs", "batch_size", "lr", "lr_min", "warmup", "weight_decay", "betas", "eps",
    "clip_grad", "seed", "eval_batch_size",
)  # fmt: skip
"""The ``TrainConfig`` fields the teacher's pretraining reads (the student's loss, task, harvest
and the like do not apply: ``--set`` refuses them and ``run.json`` holds only these)."""


def teacher_recipe(data: dict[str, Any], where: str = "recipe") -> TrainConfig:
    """A ``TrainConfig`` of the teacher's fields alone (the others at their defaults), from a
    recipe, a ``run.json``'s ``train`` (older runs saved every field) or overrides."""
    return TrainConfig.from_dict({k: v for k, v in data.items() if k in TRAIN_FIELDS}, where)


def recipe_dict(train: TrainConfig) -> dict[str, Any]:
    """The teacher's settings of ``train``, as ``run.json`` saves them."""
    full = train.to_dict()
    return {k: full[k] for k in TRAIN_FIELDS}


class TeacherRunFailed(AvparseError):
    """Training diverged (exit 1, like ``avparse train``)."""


@dataclass
class TeacherRun:
    root: Path
    out: Path
    cfg: TeacherConfig
    train: TrainConfig
    pos_weight: float
    neg_weight: float
    device: torch.device
    d: D.Dist
    progress: bool


def saved_configs(out: Path) -> tuple[TeacherConfig, TrainConfig, str | None]:
    """Configs of a teacher run folder (for :func:`runfolder.prepare`)."""
    run = runfolder.read_run(out)
    where = f"{out}/{runfolder.RUN_FILE}"
    if run is None or not isinstance(run.get("teacher"), dict):
        raise AvparseError(
            f"{where}: not a teacher run (no 'teacher' config); choose another --out"
        )
    return (
        TeacherConfig.from_dict(run["teacher"], where),
        teacher_recipe(run["train"] if isinstance(run.get("train"), dict) else {}, where),
        run.get("preset"),
    )


def configs(
    preset: str,
    model_sets: dict[str, Any] | None = None,
    train_sets: dict[str, Any] | None = None,
) -> tuple[TeacherConfig, TrainConfig]:
    """The preset's architecture and recipe with overrides (``--set`` values by config)."""
    p = get_teacher_preset(preset)
    return teacher_config(preset, model_sets), teacher_recipe(
        {**p.recipe, **(train_sets or {})}, f"teacher preset {preset!r}"
    )


def split_sets(items: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set key=value`` items to (teacher config, training recipe) overrides."""
    from dataclasses import fields

    teacher_keys = {f.name for f in fields(TeacherConfig)}
    train_keys = set(TRAIN_FIELDS)
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise AvparseError(f"--set {item}: expected key=value")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key in teacher_keys:
            model[key] = value
        elif key in train_keys:
            train[key] = value
        else:
            raise AvparseError(
                f"--set {key}: not a teacher or training setting (the teacher's training "
                f"settings: {', '.join(TRAIN_FIELDS)})"
            )
    return model, train


def pretrain(
    data_root: str | Path,
    out: str | Path,
    *,
    preset: str | None = None,
    sets: list[str] | None = None,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Pretrain a teacher into the run folder ``out``; returns the final ``run.json``."""
    out = Path(out)
    root = Path(data_root)
    model_sets, train_sets = split_sets(sets or [])
    if resume and not overwrite and (out / runfolder.RUN_FILE).is_file():
        cfg, train_cfg, saved_preset = saved_configs(out)
        if preset not in (None, saved_preset):
            cfg, train_cfg = configs(preset, model_sets, train_sets)
        else:  # settings given again apply on top of the saved ones (prepare names changes)
            preset = saved_preset or "uwav"
            cfg = TeacherConfig.from_dict({**cfg.to_dict(), **model_sets})
            train_cfg = teacher_recipe({**recipe_dict(train_cfg), **train_sets})
    else:
        preset = preset or "uwav"
        cfg, train_cfg = configs(preset, model_sets, train_sets)
    # the vocabulary is the root's (its text embeddings are the class space)
    cfg = TeacherConfig.from_dict({**cfg.to_dict(), "vocabulary": root_kind(root)})
    p = get_teacher_preset(preset)
    d = D.setup(device)
    try:
        D.per_rank_batch(train_cfg.batch_size, d)
        dev = torch.device(f"cuda:{d.local_rank}" if device == "cuda" else device)
        run = TeacherRun(root, out, cfg, train_cfg, p.pos_weight, p.neg_weight, dev, d,
                         progress and d.main)  # fmt: skip
        return _pretrain(run, preset, resume, overwrite, evaluate_test)
    finally:
        D.teardown(d)


def _prepare(run: TeacherRun, resume: bool, overwrite: bool) -> str:
    action = runfolder.prepare(
        run.out, run.cfg, run.train, resume=resume, overwrite=overwrite,  # type: ignore[arg-type]
        saved_configs=saved_configs,
    )  # fmt: skip
    if action == "overwrite":
        runfolder.clear(run.out)
    return action


def _load(run: TeacherRun, split: str, segments: bool = True) -> TeacherSplit:
    dims = {"audio": run.cfg.audio_dim, "visual": run.cfg.visual_dim}
    data = load_split(run.root, split, dims=dims, progress=run.progress, segments=segments)
    if data.dense_av is None:
        raise AvparseError(
            f"{run.root}: split {split!r} has no dense audio-visual labels; the teacher pretrains "
            "on a root with dense labels in every split (UnAV-100, AVE)"
        )
    return data


def _pretrain(
    run: TeacherRun, preset: str, resume: bool, overwrite: bool, evaluate_test: bool
) -> dict[str, Any]:
    from avparse.temporal.text import check_dims, event_features

    _load(run, "train", segments=False)  # labels first: a root without dense labels is refused
    action = D.on_main(run.d, lambda: _prepare(run, resume, overwrite))
    if action == "finished":
        return runfolder.read_run(run.out) or {}
    vocab = get_vocabulary(run.cfg.vocabulary)
    sources = {"audio": run.cfg.clap_text, "visual": run.cfg.clip_text}
    text = D.on_main(run.d, lambda: event_features(run.root, sources, vocab))
    check_dims(text, run.cfg.audio_text_dim, run.cfg.visual_text_dim, str(run.root))
    train = _load(run, "train")
    val = _load(run, "val") if run.d.main else None
    seed_all(run.train.seed)
    model = TemporalTeacher(run.cfg).to(run.device)
    optimizer, scheduler = build_optimizer(model.parameters(), run.train)
    start, best, log = 1, Best(), []
    ckpt = run.out / runfolder.CHECKPOINT
    if action == "resume" and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer, scheduler)
        start, best, log = state.epoch + 1, state.best, state.log
        if len(state.rng) == run.d.world:
            set_rng_state(state.rng[run.d.rank])
        else:
            seed_all(run.train.seed + 7919 * start + run.d.rank)
    if run.d.main:
        run.out.mkdir(parents=True, exist_ok=True)
        write_json(run.out / runfolder.RUN_FILE, {
            "status": "running", "preset": preset, "kind": "temporal-teacher",
            "data": str(run.root), "world_size": run.d.world, "teacher": run.cfg.to_dict(),
            "train": recipe_dict(run.train), "pos_weight": run.pos_weight,
            "neg_weight": run.neg_weight,
        })  # fmt: skip
    net: torch.nn.Module = model
    if run.d.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [run.d.local_rank] if run.device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
    a_text, v_text = text_tensors(text, str(run.device))
    try:
        for epoch in range(start, run.train.epochs + 1):
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss = train_one_epoch(run, net, optimizer, train, a_text, v_text, epoch)
            scheduler.step()
            rng = D.gather_state(run.d, rng_state())
            if run.d.main:
                assert val is not None
                scores = evaluate(model, val, text, run)
                if scores[SELECTION] > best.score:
                    best = Best(scores[SELECTION], epoch, scores)
                    save_teacher(model, run.cfg, run.out / RUN_MODEL_DIR)
                record = {"epoch": epoch, "lr": lr, "train_loss": loss,
                          **{f"val_{k}": v for k, v in scores.items()},
                          "best_epoch": best.epoch,
                          "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip
                log.append(record)
                write_text(run.out / runfolder.LOG, "".join(json.dumps(r) + "\n" for r in log))
                save_checkpoint(
                    ckpt, model=model, optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                    rng=rng, best=best, log=log,
                )  # fmt: skip
                if run.progress:
                    print(f"epoch {epoch}/{run.train.epochs}  loss {loss:.4f}  lr {lr:.2e}  val "
                          f"seg_av {scores[SELECTION]:.2f} (best {best.score:.2f} @ {best.epoch})",
                          flush=True)  # fmt: skip
            D.barrier(run.d)
    except TeacherRunFailed as exc:
        if run.d.main:
            runfolder.write_status(run.out, "failed", reason=str(exc))
        raise
    test_scores = None
    if run.d.main:
        if evaluate_test and best.epoch > 0:
            best_model, _ = load_folder(run.out / RUN_MODEL_DIR)
            test_scores = evaluate(best_model.to(run.device), _load(run, "test"), text, run)
            write_json(run.out / runfolder.TEST_METRICS, test_scores)
        runfolder.write_status(
            run.out, "finished", best_epoch=best.epoch, best_score=best.score,
            val_scores=best.val, test_scores=test_scores,
        )  # fmt: skip
    D.barrier(run.d)
    return runfolder.read_run(run.out) or {}


def _batch(data: TeacherSplit, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
    a, mask = data.audio.pad(rows)
    v, _ = data.visual.pad(rows)
    dense = data.dense_av
    assert dense is not None
    y, _ = dense.pad(rows, dtype=np.float32)
    return tuple(torch.from_numpy(x).to(device) for x in (a, v, y, mask))


def train_one_epoch(
    run: TeacherRun,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TeacherSplit,
    a_text: torch.Tensor,
    v_text: torch.Tensor,
    epoch: int,
) -> float:
    """One shuffled pass; the mean loss over clips (all ranks).

    Batches group clips of similar length (:func:`avparse.train.batching.bucket_batches`, the
    student's), so a batch pads to little more than its clips; UWAV pads every clip to the
    split's longest. Each ``torchrun`` process takes its share of every global batch.
    """
    from avparse.train.batching import bucket_batches

    cfg, d = run.train, run.d
    batches = bucket_batches(data.lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch,
                             world=d.world, rank=d.rank)  # fmt: skip
    net.train()
    total, seen = 0.0, 0
    steps = progress_bar(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                         enabled=run.progress)  # fmt: skip
    for step, mine in enumerate(steps, start=1):
        a, v, y, mask = _batch(data, mine, run.device)
        za, zv = net(a, v, a_text, v_text, mask)
        loss = pretrain_loss(za, zv, y, mask, pos_weight=run.pos_weight,
                             neg_weight=run.neg_weight)  # fmt: skip
        if d.active:  # the global batch's mean: DDP averages gradients over the ranks
            mine_real = float(mask.sum())
            every = float(D.all_reduce_sum(d, torch.tensor([mine_real], dtype=torch.float64))[0])
            loss = loss * (mine_real * d.world / every)
        value = float(loss.detach())
        bad = not math.isfinite(value)
        if d.active:
            bad = bool(D.all_reduce_sum(d, torch.tensor([float(bad)]))[0] > 0)
        if bad:
            raise TeacherRunFailed(
                f"{run.out}: epoch {epoch}, step {step}: the loss is not finite ({value}); "
                "training diverged (try a lower lr with --set lr=...)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad)
        optimizer.step()
        total += value * len(mine)
        seen += len(mine)
    sums = D.all_reduce_sum(d, torch.tensor([total, seen], dtype=torch.float64))
    return float(sums[0] / sums[1])


def av_predictions(za: Ragged, zv: Ragged) -> Ragged:
    """Audio-visual segment predictions: ``sigmoid(z_a) * sigmoid(z_v) >= 0.5``."""
    za_t, zv_t = torch.from_numpy(za.values), torch.from_numpy(zv.values)
    prob = (torch.sigmoid(za_t) * torch.sigmoid(zv_t)).numpy()
    return Ragged(prob >= 0.5, za.offsets)


def evaluate(
    model: TemporalTeacher, data: TeacherSplit, text: dict[str, np.ndarray], run: TeacherRun
) -> dict[str, float]:
    """Segment- and event-level audio-visual F-scores (percent) of a split with dense labels."""
    za, zv = split_logits(
        model, data.audio, data.visual, text,
        batch_size=run.train.eval_batch_size, device=str(run.device),
    )  # fmt: skip
    pred = av_predictions(za, zv)
    true = data.dense_av
    assert true is not None
    scores = score_labels(pred, pred, true, true)
    return {k: scores[k] for k in SCORE_KEYS}
