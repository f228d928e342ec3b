"""The training loop, for one process or many under ``torchrun``, as named steps.

:func:`train` reads top to bottom: check the run folder (:mod:`avparse.train.runfolder`), load the
splits, build or resume the model and optimiser, then per epoch :func:`train_one_epoch`,
:func:`evaluate` on the val split (rank 0), keep the best model, log and save the resumable
checkpoint (:mod:`avparse.train.checkpoint`); at the end score the best model on the test split.

Batches come from a ``DistributedSampler`` seeded with the recipe's seed, also with a single
process, so one process and N processes see the same global batches. A non-finite loss stops
the run (:class:`RunFailed`): ``run.json`` says ``failed`` with the reason, and the last
checkpoint and best model stay as they were.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avparse.errors import AvparseError, first_line, require
from avparse.model.checkpoint import load_folder, save_student
from avparse.model.config import ROLES, ModelConfig
from avparse.model.han import HAN
from avparse.train import runfolder
from avparse.train.checkpoint import (
    Best,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_all,
    set_rng_state,
)
from avparse.train.evaluate import predict
from avparse.train.losses import Loss
from avparse.train.recipe import TrainConfig, build_optimizer
from avparse.train.runfolder import CHECKPOINT, LOG, MODEL_DIR, RUN_FILE, TEST_METRICS, read_run
from avparse.train.tasks import LoadRequest, SplitData, Task, get_task
from avparse.utils import distributed as D
from avparse.utils.atomic import write_json, write_text
from avparse.utils.precision import as_float32, autocast, compiled
from avparse.utils.progress import progress

MASK = "mask"
"""Key of a batch's (B, T) bool validity mask (True = real segment) among its loss targets;
present only for clips of any length."""


REAL_SEGMENTS = "real_segments"
"""Key of a scalar among a padded batch's targets under ``torchrun``: the real segments of the
global batch divided by the number of ranks (the denominator of the segment losses)."""


class RunFailed(AvparseError):
    """The run stopped (a non-finite loss); ``run.json`` says ``failed``."""


@dataclass
class RunResult:
    out: Path
    main: bool
    best_epoch: int = 0
    best_score: float = float("-inf")
    val_scores: dict[str, float] = field(default_factory=dict)
    test_scores: dict[str, float] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Run:
    """What every step of one run shares; built once by :func:`train`."""

    root: Path
    out: Path
    store: Path | None
    model_cfg: ModelConfig
    cfg: TrainConfig
    task: Task
    loss: Loss
    d: D.Dist
    device: torch.device
    progress: bool
    epoch_lines: bool
    resident: dict[str, torch.Tensor] | None = None
    """The train split's arrays on the device, when it holds them (see :func:`keep_on_device`)."""

    def request(self, split: str) -> LoadRequest:
        targets = self.loss.targets if split == "train" else ()
        return LoadRequest(
            self.root, self.store, split, self.model_cfg, targets, self.progress and self.d.main,
            accept_harvest_mismatch=self.cfg.accept_harvest_mismatch, harvest=self.cfg.harvest,
        )  # fmt: skip


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
    epoch_lines: bool | None = None,
    evaluate_test: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> RunResult:
    """Train a student into the run folder ``out``; returns its scores.

    ``progress`` shows per-batch progress (a bar on a terminal, plain lines otherwise);
    ``epoch_lines`` (default: ``progress``) prints one line per epoch on rank 0.
    """
    if device == "cuda":
        if not torch.cuda.is_available():
            raise AvparseError("--device cuda but no CUDA device is available")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    task = get_task(train_cfg.task)
    loss = task.loss(train_cfg.loss)
    model_cfg.check_data_widths()  # input checks first: a refused run leaves no run folder
    if tensorboard:
        require("torch.utils.tensorboard", "tensorboard")
    d = D.setup(device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    try:
        D.per_rank_batch(train_cfg.batch_size, d)
        run = Run(
            Path(data_root), Path(out), None if store is None else Path(store), model_cfg,
            train_cfg, task, loss, d,
            torch.device(f"cuda:{d.local_rank}" if device == "cuda" else "cpu"),
            progress and d.main, (progress if epoch_lines is None else epoch_lines) and d.main,
        )  # fmt: skip
        # On CUDA a kernel without a deterministic variant warns instead of stopping the run.
        torch.use_deterministic_algorithms(train_cfg.deterministic, warn_only=device == "cuda")
        # Deterministic mode also fills each new tensor with NaN, a check for reads of
        # uninitialised memory that no result depends on and ~5 % of a CPU training step.
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
        return _train(run, preset, resume, overwrite, tensorboard, evaluate_test, on_epoch_end)
    finally:
        torch.use_deterministic_algorithms(deterministic)  # leave the process as we found it
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]
        D.teardown(d)


def _train(
    run: Run,
    preset: str | None,
    resume: bool,
    overwrite: bool,
    tensorboard: bool,
    evaluate_test: bool,
    on_epoch_end: Callable[[int], None] | None,
) -> RunResult:
    action = D.on_main(run.d, lambda: _prepare(run, resume, overwrite), share=True)
    if action == "finished":
        return _finished_result(run)
    # rank 0 loads (and packs) first; the others open the packed train split after it
    data = D.on_main(run.d, lambda: load_data(run, ("train", "val")), share=False)
    if not run.d.main:
        data = {"train": load_split(run, "train")}
    model, optimizer, scheduler = build_model(run)
    start, best, log = 1, Best(), []
    ckpt = run.out / CHECKPOINT
    if action == "resume" and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer, scheduler)
        start, best, log = state.epoch + 1, state.best, state.log
        if len(state.rng) == run.d.world:
            set_rng_state(state.rng[run.d.rank])
        else:  # a different process count cannot continue the same random streams
            seed_all(run.cfg.seed + 7919 * start + run.d.rank)
    if run.d.main:
        run.out.mkdir(parents=True, exist_ok=True)
        write_json(run.out / RUN_FILE, {
            "status": "running", "preset": preset, "task": run.task.name, "data": str(run.root),
            "world_size": run.d.world, "model": run.model_cfg.to_dict(),
            "train": run.cfg.to_dict(),
        })  # fmt: skip
    net = compiled(_parallel(run, model), run.cfg.compile, _note if run.d.main else None)
    writer = _tensorboard(run) if tensorboard and run.d.main else None
    try:
        for epoch in range(start, run.cfg.epochs + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            lr = optimizer.param_groups[0]["lr"]
            losses = train_one_epoch(run, net, optimizer, data["train"], epoch)
            scheduler.step()
            rng = D.gather_state(run.d, rng_state())
            if run.d.main:
                val = evaluate(run, model, data["val"])
                score = val[run.task.selection_metric]
                if score > best.score:
                    best = Best(score, epoch, val)
                    save_student(model, run.model_cfg, run.out / MODEL_DIR)
                record = {
                    "epoch": epoch, "lr": lr, **{f"train_{k}": v for k, v in losses.items()},
                    **{f"val_{k}": v for k, v in val.items()}, "best_epoch": best.epoch,
                    "seconds": round(time.perf_counter() - t0, 3),
                    "cpu_seconds": round(time.process_time() - c0, 3),
                }  # fmt: skip
                log.append(record)
                write_text(run.out / LOG, "".join(json.dumps(r) + "\n" for r in log))
                _write_scalars(writer, record, epoch)
                save_checkpoint(
                    run.out / CHECKPOINT, model=model, optimizer=optimizer, scheduler=scheduler,
                    epoch=epoch, rng=rng, best=best, log=log,
                )  # fmt: skip
                if run.epoch_lines:
                    metric = run.task.selection_metric
                    print(f"epoch {epoch}/{run.cfg.epochs}  loss {losses['loss']:.4f}  lr {lr:.2e}"
                          f"  val {metric} {score:.2f} (best {best.score:.2f} @ {best.epoch})",
                          flush=True)  # fmt: skip
            D.barrier(run.d)
            if on_epoch_end is not None:
                on_epoch_end(epoch)
    except RunFailed as exc:
        if run.d.main:
            runfolder.write_status(run.out, "failed", reason=str(exc))
        raise
    except KeyboardInterrupt:
        if run.d.main:
            runfolder.write_status(run.out, "interrupted", reason="interrupted (Ctrl-C)")
        raise
    except (Exception, D.PeerFailed) as exc:  # any other error ends the run: not "running"
        if run.d.main:  # another rank's failure (torchrun) is recorded with that rank's line
            runfolder.write_status(run.out, "failed", reason=D.peer_failure() or first_line(exc))
        raise
    finally:
        if writer is not None:
            writer.close()
    result = RunResult(run.out, run.d.main, best.epoch, best.score, best.val, None, log)
    if run.d.main:
        if evaluate_test and run.task.has_split(run.root, "test"):
            try:
                result.test_scores = test_best_model(run)
            except Exception as exc:
                runfolder.write_status(run.out, "failed", reason=f"test: {first_line(exc)}")
                raise
            write_json(run.out / TEST_METRICS, result.test_scores)
        runfolder.write_status(
            run.out, "finished", best_epoch=best.epoch, best_score=best.score,
            val_scores=best.val, test_scores=result.test_scores,
        )  # fmt: skip
    D.barrier(run.d)
    return result


# ---------------------------------------------------------------- steps


def load_data(run: Run, splits: tuple[str, ...]) -> dict[str, SplitData]:
    """Load (and pack) the splits; the train split must have clips."""
    data = {split: load_split(run, split) for split in splits}
    if "train" in data and len(data["train"]) == 0:
        raise AvparseError(f"{run.root}: the train split has no clips")
    return data


def load_split(run: Run, split: str) -> SplitData:
    """One split as the task loads it; the train split also gets the loss's derived targets."""
    data = run.task.load(run.request(split))
    if split == "train" and run.loss.derive is not None and len(data):
        data.targets.update(run.loss.derive(data.targets, run.cfg))
    return data


def build_model(run: Run) -> tuple[HAN, torch.optim.Optimizer, Any]:
    """The seeded initial model (the same on every rank), AdamW and the epoch schedule."""
    seed_all(run.cfg.seed)
    model = HAN(run.model_cfg).to(run.device)
    optimizer, scheduler = build_optimizer(model.parameters(), run.cfg)
    torch.manual_seed(run.cfg.seed + run.d.rank)  # dropout stream per rank
    return model, optimizer, scheduler


def train_one_epoch(
    run: Run, net: torch.nn.Module, optimizer: torch.optim.Optimizer, data: SplitData, epoch: int
) -> dict[str, float]:
    """One pass over this rank's share of the shuffled train split; mean losses over all ranks.

    Raises :class:`RunFailed` at the first step whose loss is not finite (on every rank).
    """
    from torch.utils.data import DistributedSampler

    cfg, d = run.cfg, run.d
    if data.lengths is not None:  # clips of any length: length buckets (train/batching.py)
        from avparse.train.batching import bucket_batches

        batches = bucket_batches(
            data.lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch, world=d.world, rank=d.rank
        )
    else:
        per_rank = cfg.batch_size // d.world
        indices: Any = range(len(data))  # the sampler needs only len(): no Dataset object
        sampler: DistributedSampler = DistributedSampler(
            indices, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed
        )
        sampler.set_epoch(epoch)
        order = np.fromiter(iter(sampler), dtype=np.int64)
        batches = [np.sort(order[i : i + per_rank]) for i in range(0, len(order), per_rank)]
    params = [p for p in net.parameters() if p.requires_grad]
    net.train()
    sums: dict[str, float] = {}
    seen = 0
    steps = progress(
        batches, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", enabled=run.progress
    )
    for step, (rows, (inputs, targets)) in enumerate(
        zip(steps, _device_batches(run, data, batches), strict=True), start=1
    ):
        loss, parts = _step_loss(run, net, inputs, targets)
        values = {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}
        bad = not math.isfinite(values["loss"])
        if d.active:
            # on the run's device: NCCL (torchrun --device cuda) reduces CUDA tensors only
            flag = torch.tensor([float(bad)], device=run.device)
            bad = bool(D.all_reduce_sum(d, flag)[0] > 0)
        if bad:
            kept = (
                f"the checkpoint of epoch {epoch - 1} and the best model are kept"
                if epoch > 1
                else "no checkpoint was written yet"
            )
            raise RunFailed(
                f"{run.out}: epoch {epoch}, step {step}: the loss is not finite "
                f"({values['loss']}); training diverged (try a lower --lr); {kept}"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
        optimizer.step()
        n = len(rows)
        seen += n
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v * n
    names = sorted(sums)
    totals = D.all_reduce_sum(
        d,
        torch.tensor([sums[k] for k in names] + [seen], dtype=torch.float64, device=run.device),
    ).cpu()
    return {k: float(totals[i] / totals[-1]) for i, k in enumerate(names)}


def _step_loss(
    run: Run,
    net: torch.nn.Module,
    inputs: list[torch.Tensor | None],
    targets: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one batch; non-finite probabilities (BCE refuses them) become a NaN loss.

    A batch of clips of any length carries its validity mask as ``targets["mask"]``: the model
    gets it (``mask=``) and the losses read it (segment terms over real segments only).
    """
    mask = targets.get(MASK)
    if mask is not None and run.d.active:
        # each rank's segment terms are divided by the mean real segments per rank, so that the
        # gradient DDP averages is the one of the mean over every rank's real segments
        real = D.all_reduce_sum(run.d, mask.sum().to(torch.float64).reshape(1))
        targets = {**targets, REAL_SEGMENTS: real[0] / run.d.world}
    with autocast(run.device, run.cfg.precision):  # bfloat16: the forward pass only
        out = as_float32(net(*inputs) if mask is None else net(*inputs, mask=mask))
    try:
        return run.loss.fn(out, targets, run.cfg)
    except RuntimeError:
        if torch.isfinite(out.frame_logits).all() and torch.isfinite(out.video_prob).all():
            raise
        return out.video_prob.sum() * float("nan"), {}


def evaluate(run: Run, model: torch.nn.Module, data: SplitData) -> dict[str, float]:
    """The task's scores of ``model`` on a whole split."""
    frame_prob, video_prob = predict(
        model, data, batch_size=run.cfg.eval_batch_size, device=run.device,
        precision=run.cfg.precision,
    )  # fmt: skip
    return run.task.evaluate(frame_prob, video_prob, data)


def test_best_model(run: Run) -> dict[str, float]:
    """Scores of the saved best model on the test split."""
    best_model, _ = load_folder(run.out / MODEL_DIR)
    return evaluate(run, best_model.to(run.device), run.task.load(run.request("test")))


# ---------------------------------------------------------------- plumbing


def _prepare(run: Run, resume: bool, overwrite: bool) -> str:
    action = runfolder.prepare(run.out, run.model_cfg, run.cfg, resume=resume, overwrite=overwrite)
    if action == "overwrite":
        runfolder.clear(run.out)
    return action


def _finished_result(run: Run) -> RunResult:
    """A resume of a finished run: its recorded scores, nothing trained."""
    info = read_run(run.out) or {}
    return RunResult(
        run.out, run.d.main, int(info.get("best_epoch", 0)),
        float(info.get("best_score", float("-inf"))), info.get("val_scores", {}),
        info.get("test_scores"),
    )  # fmt: skip


def _parallel(run: Run, model: torch.nn.Module) -> torch.nn.Module:
    if not run.d.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model,
        device_ids=[run.d.local_rank] if run.device.type == "cuda" else None,
        find_unused_parameters=run.model_cfg.norm == "post",  # final norms idle in post-norm
    )


def _note(line: str) -> None:
    print(f"note: {line}", file=sys.stderr, flush=True)


def _tensorboard(run: Run) -> Any:
    tb = require("torch.utils.tensorboard", "tensorboard")
    return tb.SummaryWriter(str(run.out / "tensorboard"))


def _write_scalars(writer: Any, record: dict[str, Any], epoch: int) -> None:
    if writer is None:
        return
    for k, v in record.items():
        if k != "epoch":
            writer.add_scalar(k.replace("_", "/", 1), v, epoch)
    writer.flush()


def keep_on_device(run: Run, data: SplitData) -> bool:
    """Whether the train split stays on the device for the whole run: on a GPU, when its
    float32 arrays take at most half of the free memory (an epoch then never touches the
    host). On the CPU the memory maps are read directly."""
    if run.device.type != "cuda" or data.lengths is not None:  # ragged splits: from the maps
        return False
    rows = len(data)
    need = sum(
        4 * rows * int(np.prod(a.shape[1:]))
        for a in (*data.inputs.values(), *(data.targets[k] for k in run.loss.batch_keys))
    )
    free, _ = torch.cuda.mem_get_info(run.device)
    return need <= free // 2


def _device_batches(
    run: Run, data: SplitData, batches: list[np.ndarray]
) -> Iterator[tuple[list[torch.Tensor | None], dict[str, torch.Tensor]]]:
    """Each batch's inputs (in role order) and loss targets as float32 tensors on the device:
    gathered on the device from the resident split, else from the memory maps by a prefetch
    thread. Both give the same values. Clips of any length are padded per batch; their targets
    then carry the (B, T) bool mask as :data:`MASK`."""
    keys = run.loss.batch_keys
    if run.resident is None and keep_on_device(run, data):
        arrays = {**data.inputs, **{k: data.targets[k] for k in keys}}
        run.resident = {
            n: torch.from_numpy(np.array(a, dtype=np.float32)).to(run.device)
            for n, a in arrays.items()
        }
    if run.resident is not None:
        for rows in batches:
            index = torch.from_numpy(rows).to(run.device)
            picked = {n: t.index_select(0, index) for n, t in run.resident.items()}
            yield [picked.get(r) for r in ROLES], {k: picked[k] for k in keys}
        return
    if data.lengths is not None:
        keys = (*keys, MASK)
    for host in _prefetch(data, batches, run.loss.batch_keys):
        yield (
            [_tensor(host.get(r), run.device) for r in ROLES],
            {k: torch.from_numpy(host[k]).to(run.device, non_blocking=True) for k in keys},
        )


def _tensor(array: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    """A host array on the device; None stays None (a role the model does not take)."""
    return None if array is None else torch.from_numpy(array).to(device, non_blocking=True)


def _gather(data: SplitData, rows: np.ndarray, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """One batch as float32 host arrays: a fancy index per memory-mapped array (clips of any
    length: padded to the batch's longest, with the bool mask as :data:`MASK`)."""
    if data.lengths is not None:
        from avparse.train.batching import pad_rows

        arrays = {**data.inputs, **{k: data.targets[k] for k in keys}}
        padded, mask = pad_rows(arrays, rows)
        padded[MASK] = mask
        return padded
    out = {r: np.ascontiguousarray(a[rows], dtype=np.float32) for r, a in data.inputs.items()}
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
