"""The training loop: one function, :func:`train`, for one process or many under ``torchrun``.

Per epoch: shuffled batches (a ``DistributedSampler`` seeded with the recipe's seed, also with a
single process, so one process and N processes see the same global batches), AdamW steps with
gradient clipping, the per-epoch learning rate, then (rank 0) validation, best-model selection,
``log.jsonl`` and an atomic resumable checkpoint. At the end rank 0 scores the best model on the
test split. Run folder::

    run.json           status (running | finished), preset, model and training configs
    checkpoint.pt      resumable state: model, optimiser, scheduler, epoch, RNG states, best, log
    log.jsonl          one JSON record per epoch (losses, lr, val scores, seconds)
    model/             best model in our folder format (config.json + model.safetensors)
    test_metrics.json  scores of the best model on the test split
    tensorboard/       optional event files
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avparse.errors import AvparseError, first_line, require
from avparse.model.checkpoint import load_folder, save_student
from avparse.model.config import ModelConfig
from avparse.model.han import HAN
from avparse.train.evaluate import predict
from avparse.train.recipe import TrainConfig, build_optimizer
from avparse.train.tasks import LoadRequest, SplitData, Task, get_task
from avparse.utils import distributed as D
from avparse.utils.atomic import atomic_path, write_json, write_text
from avparse.utils.jsonio import read_json_object
from avparse.vocab import Vocabulary, get_vocabulary

RUN_FILE = "run.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
MODEL_DIR = "model"
TEST_METRICS = "test_metrics.json"
OUR_FILES = (RUN_FILE, CHECKPOINT, LOG, MODEL_DIR, TEST_METRICS, "tensorboard")


@dataclass
class RunResult:
    out: Path
    main: bool
    best_epoch: int = 0
    best_score: float = float("-inf")
    val_scores: dict[str, float] = field(default_factory=dict)
    test_scores: dict[str, float] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)


def read_run(out: str | Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run folder, or None."""
    path = Path(out) / RUN_FILE
    if not path.is_file():
        return None
    return read_json_object(path, "run file")


def _vocab_of(config: ModelConfig) -> Vocabulary:
    base = get_vocabulary(config.vocabulary)
    if base.names == config.class_names:
        return base
    return Vocabulary.from_names(config.class_names, name=config.vocabulary)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state: tuple[Any, ...] = np.random.get_state()  # type: ignore[assignment]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _prepare_folder(
    out: Path, *, resume: bool, overwrite: bool, d: D.Dist, model_cfg: ModelConfig,
    train_cfg: TrainConfig,
) -> dict[str, Any] | None:  # fmt: skip
    """Check the run folder; returns the checkpoint to resume from (or None)."""
    run = read_run(out)
    if run is not None and not overwrite:
        if not resume:
            state = "a finished" if run.get("status") == "finished" else "an unfinished"
            hint = "--overwrite to replace it" + ("" if state == "a finished" else " or --resume")
            raise AvparseError(f"{out}: holds {state} run; use {hint}")
        if run.get("model") != model_cfg.to_dict() or run.get("train") != _jsonable(
            train_cfg.to_dict()
        ):
            raise AvparseError(
                f"{out}: the run was started with other settings; resume without changing "
                "preset/flags (configs are read from run.json) or use --overwrite"
            )
    if overwrite:
        D.barrier(d)
        if d.main:
            import shutil

            for name in OUR_FILES:
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
        D.barrier(d)
        return None
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        try:
            return torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AvparseError(
                f"{ckpt}: cannot read resumable checkpoint ({first_line(exc)})"
            ) from None
    return None


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data))


def run_configs(out: str | Path) -> tuple[ModelConfig, TrainConfig, str | None]:
    """Configs of an existing run folder (for ``--resume`` without repeating the flags)."""
    run = read_run(out)
    if run is None:
        raise AvparseError(f"{out}: no {RUN_FILE} to resume from")
    return (
        ModelConfig.from_dict(run["model"], f"{out}/{RUN_FILE}"),
        TrainConfig.from_dict(run["train"], f"{out}/{RUN_FILE}"),
        run.get("preset"),
    )


def _load_all(
    task: Task, req: Callable[[str], LoadRequest], d: D.Dist, splits: tuple[str, ...]
) -> dict[str, SplitData]:
    """Rank 0 loads (and packs) first; the others open the packed store after it."""
    data: dict[str, SplitData] = {}
    error = None
    if d.main:
        try:
            for split in splits:
                data[split] = task.load(req(split))
        except AvparseError as exc:
            error = str(exc)
    error = D.broadcast_object(d, error)
    if error is not None:
        raise AvparseError(error)
    if not d.main:
        data["train"] = task.load(req("train"))
    return data


def _split_exists(task: Task, req: LoadRequest) -> bool:
    try:
        task.load(req)
    except AvparseError:
        return False
    return True


def train(
    data_root: str | Path,
    out: str | Path,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    preset: str | None = None,
    store: str | Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    tensorboard: bool = False,
    progress: bool = True,
    evaluate_test: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> RunResult:
    """Train a student; see the module docstring for the run folder. Returns the scores."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise AvparseError("--device cuda but no CUDA device is available")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    d = D.setup(device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(
            Path(data_root), Path(out), model_cfg, train_cfg, preset=preset,
            store=None if store is None else Path(store), device=device, resume=resume,
            overwrite=overwrite, tensorboard=tensorboard, progress=progress,
            evaluate_test=evaluate_test, on_epoch_end=on_epoch_end, d=d,
        )  # fmt: skip
    finally:
        torch.use_deterministic_algorithms(deterministic)  # leave the process as we found it
        D.teardown(d)


def _train(
    root: Path, out: Path, model_cfg: ModelConfig, cfg: TrainConfig, *, preset: str | None,
    store: Path | None, device: str, resume: bool, overwrite: bool, tensorboard: bool,
    progress: bool, evaluate_test: bool, on_epoch_end: Callable[[int], None] | None, d: D.Dist,
) -> RunResult:  # fmt: skip
    task = get_task(cfg.task)
    if cfg.loss not in task.losses:
        raise AvparseError(
            f"task {task.name!r} has no loss {cfg.loss!r} (has: {', '.join(task.losses)})"
        )
    per_rank = D.per_rank_batch(cfg.batch_size, d)
    result = RunResult(out, d.main)
    run = read_run(out)
    if resume and run is not None and run.get("status") == "finished" and not overwrite:
        result.best_epoch = int(run.get("best_epoch", 0))
        result.best_score = float(run.get("best_score", float("-inf")))
        result.val_scores = run.get("val_scores", {})
        result.test_scores = run.get("test_scores")
        return result
    ckpt = _prepare_folder(
        out, resume=resume, overwrite=overwrite, d=d, model_cfg=model_cfg, train_cfg=cfg
    )
    vocab = _vocab_of(model_cfg)
    dev = torch.device(f"cuda:{d.local_rank}" if device == "cuda" else "cpu")
    # On CUDA a kernel without a deterministic variant warns instead of stopping the run.
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=device == "cuda")

    def request(split: str) -> LoadRequest:
        return LoadRequest(root, store, split, model_cfg, cfg, vocab, progress and d.main)

    data = _load_all(task, request, d, ("train", "val"))
    train_data = data["train"]
    if len(train_data) == 0:
        raise AvparseError(f"{root}: the train split has no clips")

    _seed_all(cfg.seed)
    model: torch.nn.Module = HAN(model_cfg).to(dev)
    optimizer, scheduler = build_optimizer(model.parameters(), cfg)
    start = 1
    log: list[dict[str, Any]] = []
    best_score, best_epoch, best_val = float("-inf"), 0, {}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start = int(ckpt["epoch"]) + 1
        best_score, best_epoch = float(ckpt["best_score"]), int(ckpt["best_epoch"])
        best_val = dict(ckpt["best_val"])
        log = [dict(r) for r in json.loads(ckpt["log"])]
        rngs = ckpt["rng"]
        if len(rngs) == d.world:
            _set_rng_state(rngs[d.rank])
        else:  # a different process count cannot continue the same random streams
            _seed_all(cfg.seed + 7919 * start + d.rank)
    else:
        torch.manual_seed(cfg.seed + d.rank)  # dropout stream per rank
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_FILE, {
            "status": "running", "preset": preset, "task": task.name, "data": str(root),
            "world_size": d.world, "model": model_cfg.to_dict(), "train": _jsonable(cfg.to_dict()),
        })  # fmt: skip
    net = model
    if d.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model,
            device_ids=[d.local_rank] if device == "cuda" else None,
            find_unused_parameters=model_cfg.norm == "post",  # final norms idle in post-norm
        )
    from torch.utils.data import DistributedSampler

    indices: Any = range(len(train_data))  # the sampler needs only len(): no Dataset object
    sampler: DistributedSampler = DistributedSampler(
        indices, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed
    )
    writer = None
    if tensorboard and d.main:
        tb = require("torch.utils.tensorboard", "tensorboard")
        writer = tb.SummaryWriter(str(out / "tensorboard"))
    keys = task.train_targets(cfg)
    for epoch in range(start, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        batches = [np.sort(order[i : i + per_rank]) for i in range(0, len(order), per_rank)]
        net.train()
        sums: dict[str, float] = {}
        seen = 0
        bar = batches
        if progress and d.main:
            from tqdm import tqdm

            bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False)
        for rows, host in zip(bar, _prefetch(train_data, batches, keys), strict=True):
            inputs = [torch.from_numpy(host[r]).to(dev, non_blocking=True) for r in ROLES]
            targets = {k: torch.from_numpy(host[k]).to(dev, non_blocking=True) for k in keys}
            loss, parts = task.loss(net(*inputs), targets, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            n = len(rows)
            seen += n
            for k, v in {"loss": loss.detach(), **parts}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
        scheduler.step()
        names = sorted(sums)
        totals = D.all_reduce_sum(
            d, torch.tensor([sums[k] for k in names] + [seen], dtype=torch.float64)
        )
        losses = {k: float(totals[i] / totals[-1]) for i, k in enumerate(names)}
        rng = D.gather_state(d, _rng_state())
        if d.main:
            frame_prob, video_prob = predict(
                model, data["val"], batch_size=cfg.eval_batch_size, device=dev
            )
            val = task.evaluate(frame_prob, video_prob, data["val"])
            score = val[task.selection_metric]
            if score > best_score:
                best_score, best_epoch, best_val = score, epoch, val
                save_student(model, model_cfg, out / MODEL_DIR)
            record = {
                "epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in losses.items()},
                **{f"val_{k}": v for k, v in val.items()}, "best_epoch": best_epoch,
                "seconds": round(time.perf_counter() - t0, 3),
            }  # fmt: skip
            log.append(record)
            write_text(out / LOG, "".join(json.dumps(r) + "\n" for r in log))
            if writer is not None:
                for k, v in record.items():
                    if k != "epoch":
                        writer.add_scalar(k.replace("_", "/", 1), v, epoch)
                writer.flush()
            with atomic_path(out / CHECKPOINT) as tmp:
                torch.save({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "rng": rng,
                    "best_score": best_score, "best_epoch": best_epoch, "best_val": best_val,
                    "log": json.dumps(log),
                }, tmp)  # fmt: skip
            if progress:
                shown = (
                    f"{task.selection_metric} {score:.2f} (best {best_score:.2f} @ {best_epoch})"
                )
                print(f"epoch {epoch}/{cfg.epochs}  loss {losses['loss']:.4f}  lr {lr:.2e}  val {shown}",
                      flush=True)  # fmt: skip
        D.barrier(d)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    if writer is not None:
        writer.close()
    result.best_epoch, result.best_score, result.val_scores, result.log = (
        best_epoch,
        best_score,
        best_val,
        log,
    )
    if d.main:
        if evaluate_test and _has_split(root, task, request):
            best_model, _ = load_folder(out / MODEL_DIR)
            test = task.load(request("test"))
            frame_prob, video_prob = predict(
                best_model.to(dev), test, batch_size=cfg.eval_batch_size, device=dev
            )
            result.test_scores = task.evaluate(frame_prob, video_prob, test)
            write_json(out / TEST_METRICS, result.test_scores)
        write_json(out / RUN_FILE, {
            **(read_run(out) or {}), "status": "finished", "best_epoch": best_epoch,
            "best_score": best_score, "val_scores": best_val, "test_scores": result.test_scores,
        })  # fmt: skip
    D.barrier(d)
    return result


ROLES = ("audio", "visual", "motion")


def _gather(data: SplitData, rows: np.ndarray, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """One batch as float32 host arrays: a fancy index per memory-mapped array."""
    out = {r: np.ascontiguousarray(data.inputs[r][rows], dtype=np.float32) for r in ROLES}
    out.update({k: np.asarray(data.targets[k][rows], dtype=np.float32) for k in keys})
    return out


def _prefetch(
    data: SplitData, batches: list[np.ndarray], keys: tuple[str, ...], depth: int = 2
) -> Iterator[dict[str, np.ndarray]]:
    """Gather the next batches in a background thread while the current one trains.

    The batch order is fixed beforehand, so prefetching changes nothing in the results; numpy
    copies release the GIL, so reading the memory maps overlaps with the model's step.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for rows in batches:
                if stop.is_set():
                    return
                q.put(_gather(data, rows, keys))
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=work, name="avparse-prefetch", daemon=True)
    thread.start()
    try:
        for _ in batches:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def _has_split(root: Path, task: Task, request: Callable[[str], LoadRequest]) -> bool:
    """Whether the data root has a test split to score (annotation file present)."""
    from avparse.data.layout import LLP_FILES

    if task.name == "llp":
        return (root / LLP_FILES["test"]).is_file()
    return _split_exists(task, request("test"))
