"""Training tasks: which data and labels a run loads, its losses, its evaluation and selection.

The loop in :mod:`avparse.train.loop` is task-agnostic. A task is a :class:`Task` record in the
``TASKS`` registry; ``llp`` (LLP audio-visual video parsing) lives here. Another task registers
itself from its own module, which :func:`get_task` imports on demand as
``avparse.train.task_<name>`` (for example ``task_ave.py`` calling ``register_task(Task(...))``
at import time).

Protocol (all arrays row-aligned with ``SplitData.filenames``):

- ``load(request) -> SplitData``: ``request`` is a :class:`LoadRequest` (data root, store folder,
  split, model config, training config, vocabulary). ``SplitData.inputs`` must hold ``audio``,
  ``visual`` and ``motion`` arrays shaped like the model config's feature kinds (memory maps are
  fine); ``targets`` holds whatever the task's loss and evaluation need.
- ``loss(out, batch, train_cfg) -> (total, parts)``: ``out`` is a ``HANOutput`` and ``batch``
  maps each ``targets`` key to a float tensor of the batch rows.
- ``evaluate(frame_prob, video_prob, data) -> dict[str, float]``: scores of numpy predictions
  ``frame_prob`` (N, 10, 2, C) and ``video_prob`` (N, C) of a whole split.
- ``selection_metric``: key of the ``evaluate`` dict that selects the best epoch (higher wins).
- ``train_targets`` / ``eval_targets``: which ``targets`` keys go into training batches; the
  evaluation gets the whole ``SplitData``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avparse.errors import AvparseError
from avparse.eval import SCORE_KEYS

if TYPE_CHECKING:
    from avparse.model.config import ModelConfig
    from avparse.train.recipe import TrainConfig
    from avparse.vocab import Vocabulary


@dataclass
class SplitData:
    """One split, ready for the loop: inputs by role and targets by name, row-aligned."""

    split: str
    filenames: list[str]
    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.filenames)


@dataclass(frozen=True)
class LoadRequest:
    root: Path
    store: Path | None
    split: str
    model: ModelConfig
    train: TrainConfig
    vocab: Vocabulary
    progress: bool = False


@dataclass(frozen=True)
class Task:
    name: str
    vocabulary: str
    losses: tuple[str, ...]
    selection_metric: str
    load: Callable[[LoadRequest], SplitData]
    loss: Callable[[Any, dict[str, Any], TrainConfig], tuple[Any, dict[str, Any]]]
    evaluate: Callable[[np.ndarray, np.ndarray, SplitData], dict[str, float]]
    train_targets: Callable[[TrainConfig], tuple[str, ...]]
    score_names: tuple[str, ...] = ()
    """Keys to print in the final table, in order (all keys when empty)."""


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        module = f"avparse.train.task_{name.replace('-', '_')}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the plugin exists but one of its imports is missing
                raise
    if name not in TASKS:
        raise AvparseError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})")
    return TASKS[name]


# ---------------------------------------------------------------- llp


def _llp_train_targets(cfg: TrainConfig) -> tuple[str, ...]:
    return ("weak",) if cfg.loss == "han" else ("weak", "harvest_audio", "harvest_visual")


def _llp_load(req: LoadRequest) -> SplitData:
    from avparse.data.llp import LLPAnnotations
    from avparse.data.store import ensure_packed

    kinds = list(dict.fromkeys(req.model.feature_kinds.values()))
    needs_harvest = req.split == "train" and req.train.loss in ("valor", "valor-video")
    if needs_harvest:
        kinds += ["harvest_audio", "harvest_visual"]
    packed = ensure_packed(
        req.root,
        req.store,
        splits=(req.split,),
        kinds={req.split: kinds},
        vocab=req.vocab,
        progress=req.progress,
    )[req.split]
    ann = LLPAnnotations(req.root, req.vocab)
    weak = ann.weak(req.split)
    targets: dict[str, np.ndarray] = {"weak": weak.labels.astype(np.float32)}
    if needs_harvest:
        targets["harvest_audio"] = packed["harvest_audio"]
        targets["harvest_visual"] = packed["harvest_visual"]
    if req.split != "train":
        targets["dense_audio"], targets["dense_visual"] = ann.dense(req.split)
    inputs = {role: packed[kind] for role, kind in req.model.feature_kinds.items()}
    return SplitData(req.split, list(packed.filenames), inputs, targets)


def _llp_loss(out: Any, batch: dict[str, Any], cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    from avparse.train import losses

    if cfg.loss == "han":
        return losses.han_loss(out, batch["weak"], guided=cfg.han_guided)
    fn = losses.valor_loss if cfg.loss == "valor" else losses.valor_video_loss
    return fn(out, batch["weak"], batch["harvest_audio"], batch["harvest_visual"])


def _llp_evaluate(
    frame_prob: np.ndarray, video_prob: np.ndarray, data: SplitData
) -> dict[str, float]:
    from avparse.eval.events import decide
    from avparse.eval.metrics import llp_scores

    pred_a, pred_v = decide(frame_prob, video_prob)
    scores = llp_scores(pred_a, pred_v, data.targets["dense_audio"], data.targets["dense_visual"])
    return {k: float(scores[k]) for k in SCORE_KEYS}


register_task(
    Task(
        name="llp",
        vocabulary="llp",
        losses=("han", "valor", "valor-video"),
        selection_metric="seg_type",
        load=_llp_load,
        loss=_llp_loss,
        evaluate=_llp_evaluate,
        train_targets=_llp_train_targets,
        score_names=SCORE_KEYS,
    )
)
