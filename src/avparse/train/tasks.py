"""Training tasks: what a run loads for each split, how it is scored, which epoch is best.

The loop in :mod:`avparse.train.loop` never looks at a task's name: a task is a :class:`Task`
record in the ``TASKS`` registry that declares what it provides. ``llp`` (LLP audio-visual video
parsing) lives here; another task registers itself from its own module, which :func:`get_task`
imports on demand as ``avparse.train.task_<name>`` (``task_ave.py`` is one).

What a task declares (all arrays row-aligned with ``SplitData.filenames``):

- ``provides``: the training targets it can load (``weak``, ``harvest_audio``, ...). A loss of
  :data:`avparse.train.losses.LOSSES` is offered when the task provides all of its ``targets``.
- ``load(request) -> SplitData``: ``request`` names the data root, store folder, split, model
  config and the training ``targets`` wanted (empty when evaluating). ``SplitData.inputs`` holds
  ``audio``, ``visual`` and ``motion`` arrays shaped like the model config's feature kinds
  (memory maps are fine); ``targets`` holds the requested training targets, and for the val
  and test splits whatever ``evaluate`` reads.
- ``evaluate(frame_prob, video_prob, data) -> dict[str, float]``: scores of numpy predictions
  ``frame_prob`` (N, T, 2, C) and ``video_prob`` (N, C) of a whole split, keys ``score_keys``
  (T = 10, or the longest clip of a split of any length, ``data.lengths``, padding zeros).
- ``selection_metric``: the ``evaluate`` key that selects the best epoch (higher wins).
- ``has_split(root, split)``: whether the data root has that split (cheap: a file test).
- ``write_predictions`` (optional): the prediction files ``avparse evaluate`` writes.
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
    from avparse.train.losses import Loss
    from avparse.vocab import Vocabulary


@dataclass
class SplitData:
    """One split, ready for the loop: inputs by role and targets by name, row-aligned.

    Clips of 10 segments (LLP, AVE): ``lengths`` is None and the arrays are (N, 10, ...).
    Clips of any length (UnAV-100): ``lengths`` (N,) holds each clip's segments, the inputs and
    per-segment targets are :class:`avparse.data.ragged.Ragged` (no padding; batches are padded
    per batch with a mask, :mod:`avparse.train.batching`), per-clip targets stay (N, ...) arrays.
    """

    split: str
    filenames: list[str]
    inputs: dict[str, Any]
    """Role -> (N, 10, dim) array, or a ``Ragged`` of (T_i, dim) rows when ``lengths`` is set."""
    targets: dict[str, Any] = field(default_factory=dict)
    lengths: np.ndarray | None = None
    """(N,) segments per clip for clips of any length; None: every clip has 10."""

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def is_ragged(self) -> bool:
        return self.lengths is not None


@dataclass(frozen=True)
class LoadRequest:
    root: Path
    store: Path | None
    split: str
    model: ModelConfig
    targets: tuple[str, ...] = ()
    """Training targets wanted in this split (the loss's); empty for evaluation."""
    progress: bool = False
    accept_harvest_mismatch: bool = False
    """Load harvests whose positives lie outside the weak labels instead of refusing them."""
    harvest: str = "frame"
    """Whose harvest the targets come from: ``frame`` (``avparse harvest``) or ``temporal``
    (``avparse teacher label``, ``ROOT/temporal``); see :func:`avparse.data.layout.harvest_kind`."""

    def kind(self, target: str) -> str:
        """The store kind holding the training target ``target`` in this request's harvest."""
        from avparse.data.layout import harvest_kind

        return harvest_kind(target, self.harvest)

    @property
    def vocab(self) -> Vocabulary:
        return self.model.vocab


@dataclass(frozen=True)
class Task:
    name: str
    vocabulary: str
    """Vocabulary a model gets for this task when the settings name none."""
    provides: tuple[str, ...]
    selection_metric: str
    score_keys: tuple[str, ...]
    load: Callable[[LoadRequest], SplitData]
    evaluate: Callable[[np.ndarray, np.ndarray, SplitData], dict[str, float]]
    has_split: Callable[[Path, str], bool]
    write_predictions: Callable[[Path, SplitData, np.ndarray, np.ndarray], list[str]] | None = None
    """Writes the task's own prediction files into a folder, returns their names; None: the LLP
    dense files ``audio.tsv`` / ``visual.tsv`` (:func:`avparse.train.evaluate.write_predictions`)."""

    @property
    def losses(self) -> tuple[str, ...]:
        """Names of the losses whose targets this task provides."""
        from avparse.train.losses import LOSSES

        return tuple(n for n, loss in LOSSES.items() if set(loss.targets) <= set(self.provides))

    def loss(self, name: str) -> Loss:
        """The loss ``name``, refused with one line when this task cannot feed it."""
        from avparse.train.losses import get_loss

        if name not in self.losses:
            raise AvparseError(
                f"task {self.name!r} has no loss {name!r} (has: {', '.join(self.losses)})"
            )
        return get_loss(name)


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
        raise AvparseError(f"unknown task {name!r} (known: {', '.join(known_tasks())})")
    return TASKS[name]


def model_task(model: ModelConfig, task: str | None, where: str) -> str:
    """The task to run a trained model on: its own (the task whose vocabulary is the model's
    ``vocabulary``; ``llp`` for a custom one) when ``task`` is None, else ``task``, refused with
    one line naming ``where`` (the checkpoint) when it needs another vocabulary."""
    own = model.vocabulary if model.vocabulary in known_tasks() else None
    if own is not None and get_task(own).vocabulary != model.vocabulary:
        own = None
    if task is None:
        return own or "llp"
    if own is not None and get_task(task).vocabulary != model.vocabulary:
        raise AvparseError(
            f"{where}: --task {task} contradicts the model's vocabulary {model.vocabulary!r} "
            f"(its task is {own}: drop --task or pass --task {own})"
        )
    return task


def known_tasks() -> list[str]:
    """Names of every task: those registered and the ``avparse.train.task_<name>`` modules."""
    import pkgutil

    import avparse.train

    modules = pkgutil.iter_modules(avparse.train.__path__)
    found = {m.name[len("task_") :] for m in modules if m.name.startswith("task_")}
    return sorted({*TASKS, *found})


def check_harvests(
    req: LoadRequest, harvests: dict[str, np.ndarray], weak: np.ndarray, ids: list[str]
) -> None:
    """Refuse harvests whose positives lie outside the weak labels, unless the run accepts them.

    ``harvests`` maps store kinds (``harvest_audio``, ...) to (rows, 10, classes) arrays.
    """
    from avparse.data.agreement import outside_share, refuse_outside
    from avparse.data.layout import kind_folder

    for kind, harvest in harvests.items():
        refuse_outside(
            outside_share(str(req.root / kind_folder(kind)), harvest, weak, ids),
            accept=req.accept_harvest_mismatch,
            how_to_accept="--set accept_harvest_mismatch=true",
        )


# ---------------------------------------------------------------- llp

_LLP_STORE_TARGETS = ("harvest_audio", "harvest_visual", "soft_audio", "soft_visual")
"""Training targets that are arrays of the packed store (same names as its kinds)."""


def _llp_load(req: LoadRequest) -> SplitData:
    from avparse.data.llp import LLPAnnotations
    from avparse.data.store import ensure_packed

    if req.model.vocabulary in ("ave", "unav"):  # not "unknown class 'Singing'" in a split file
        raise AvparseError(
            f"the model has {req.model.num_classes} classes of vocabulary "
            f"{req.model.vocabulary!r}; the llp task needs LLP's (pass --task "
            f"{req.model.vocabulary} to run it on its own task's data)"
        )
    kinds = list(dict.fromkeys(req.model.feature_kinds.values()))
    from_store = [t for t in req.targets if t in _LLP_STORE_TARGETS]
    packed = ensure_packed(
        req.root,
        req.store,
        splits=(req.split,),
        kinds={req.split: kinds + [req.kind(t) for t in from_store]},
        vocab=req.vocab,
        progress=req.progress,
    )[req.split]
    ann = LLPAnnotations(req.root, req.vocab)
    weak = ann.weak(req.split)
    check_harvests(
        req, {req.kind(t): packed[req.kind(t)] for t in from_store}, weak.labels, weak.ids
    )
    targets: dict[str, np.ndarray] = {t: packed[req.kind(t)] for t in from_store}
    if "weak" in req.targets:
        targets["weak"] = weak.labels.astype(np.float32)
    if req.split != "train":
        targets["dense_audio"], targets["dense_visual"] = ann.dense(req.split)
    inputs = {role: packed[kind] for role, kind in req.model.feature_kinds.items()}
    return SplitData(req.split, list(packed.filenames), inputs, targets)


def _llp_evaluate(
    frame_prob: np.ndarray, video_prob: np.ndarray, data: SplitData
) -> dict[str, float]:
    from avparse.eval.events import decide
    from avparse.eval.metrics import llp_scores

    pred_a, pred_v = decide(frame_prob, video_prob)
    scores = llp_scores(pred_a, pred_v, data.targets["dense_audio"], data.targets["dense_visual"])
    return {k: float(scores[k]) for k in SCORE_KEYS}


def _llp_has_split(root: Path, split: str) -> bool:
    from avparse.data.layout import LLP_FILES

    return (root / LLP_FILES[split]).is_file()


register_task(
    Task(
        name="llp",
        vocabulary="llp",
        provides=("weak", *_LLP_STORE_TARGETS),
        selection_metric="seg_type",
        score_keys=tuple(SCORE_KEYS),
        load=_llp_load,
        evaluate=_llp_evaluate,
        has_split=_llp_has_split,
    )
)
