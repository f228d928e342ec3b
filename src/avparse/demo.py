"""The synthetic benchmark behind ``avparse demo``: weak labels, a fused teacher, VALOR, UWAV.

Steps, each reused when already done with the same settings: generate an LLP-like data root
(:func:`avparse.synthetic.generate_llp`, completion marker) whose harvest files come from the
real calibration and rule, and beside it the root of the fused teacher
(:func:`avparse.synthetic.fused_root`); train every method of :data:`METHODS` through
:func:`avparse.train.loop.train` (same narrowed architecture and schedule for all, so only the
supervision differs), score the best model of each on the test split with the ten LLP numbers,
write ``results.json`` and draw one test clip's timeline per method (truth vs prediction) with
:func:`avparse.parsing.plot.plot_timeline`.

The defaults are sized to finish in well under 10 minutes on 2 CPU cores (see ``docs/synthetic.md``
for measured times); a larger ``clips``/``epochs``/``d_model`` gives a closer-to-paper run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avparse.errors import AvparseError
from avparse.eval import SCORE_KEYS
from avparse.utils.text import count


@dataclass(frozen=True)
class Method:
    """One column of the demo: what the same network learns from."""

    key: str
    """Key in ``results.json`` and run folder under the demo's ``out``."""
    title: str
    preset: str
    """Recipe (loss and schedule family) and model preset; the demo narrows both."""
    loss: str | None = None
    """A loss other than the preset's own."""
    teacher: str = "modality"
    """Whose harvest files the run reads: ``modality`` (VALOR's teachers) or ``fused``."""
    arch: str | None = None
    """A network layout other than the preset's (``uwav``: UWAV's network at the demo's width)."""


METHODS = (
    Method("han", "HAN", "han"),
    Method("valor_fused", "VALOR fused", "valor", teacher="fused"),
    Method("valor", "VALOR", "valor"),
    Method("uwav", "UWAV", "valor", loss="uwav"),
)
"""The demo's columns, from weak labels alone to modality-independent teachers and UWAV's
soft, re-weighted targets with feature mixup (the same harvests). Every column trains VALOR's
network (``arch: valor``) at the demo's width, so only the supervision differs: the UWAV column
is UWAV's objective on VALOR's network."""

UWAV_NETWORK = Method("uwav_net", "UWAV net", "valor", loss="uwav", arch="uwav")
"""The optional fifth column (``--uwav-network``): UWAV's objective on UWAV's network
(``arch: uwav``: MLP projections and MIL attentions) at the demo's width; the rest as UWAV."""

NETWORK_NOTE = (
    "HAN, VALOR fused, VALOR and UWAV train VALOR's network (arch valor) at the demo's width: "
    "UWAV is UWAV's objective on it."
)
UWAV_NETWORK_NOTE = "UWAV net: UWAV's objective on UWAV's network (arch uwav), same width."
"""Said under the demo's table (the second line when :data:`UWAV_NETWORK` ran)."""

FRAME_DTYPE = "float16"
"""The demo root's frame-level feature files (ResNet-152's 80 rows a clip) are half precision:
half the disk (docs/performance.md, "demo"); training reads their 10-row float32 averages."""

RUNS_FILE = "demo_runs.json"
"""``{method: data settings}``: the data each run folder was trained on, so a run is reused only
on the data it learnt from (a regenerated set retrains every method)."""


@dataclass
class DemoConfig:
    """Sizes and schedule of the demo run (every field is a ``avparse demo`` flag)."""

    out: Path = Path("runs/demo")
    """Folder of the run: ``data/``, ``data_fused/``, one run folder per method, ``results.json``,
    timeline PNGs."""
    clips: int = 2000
    """Training clips of the synthetic set."""
    val_clips: int = 300
    """Validation clips (model selection and teacher threshold calibration)."""
    test_clips: int = 500
    """Test clips (the reported scores)."""
    features: str = "valor"
    """Synthetic feature set: ``valor`` (VGGish / ResNet-152 / R(2+1)D) or ``valor++``."""
    epochs: int = 20
    warmup: int = 2
    lr: float = 1e-3
    lr_min: float = 1e-5
    batch_size: int = 32
    d_model: int = 64
    """Width of the student (the published presets use 512 / 256)."""
    num_layers: int = 1
    nhead: int = 4
    dim_feedforward: int = 128
    seed: int = 0
    """Seed of the synthetic data; the training seed is the preset's own."""
    plot: bool = True
    progress: bool = True
    """Training progress (bars on a terminal, plain lines otherwise; ``--no-progress``)."""
    notes: bool = True
    """Lines saying what is generated, reused or trained (off with ``--quiet``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further model config overrides (``--set key=value``)."""
    uwav_network: bool = False
    """Also train :data:`UWAV_NETWORK` (UWAV's objective on UWAV's network), a fifth column."""
    precision: str = "float32"
    """Arithmetic of the students' forward passes (``--precision``, see
    :mod:`avparse.utils.precision`); a run trained in another precision is trained again."""

    @property
    def methods(self) -> tuple[Method, ...]:
        """The columns this run trains, in order."""
        return (*METHODS, UWAV_NETWORK) if self.uwav_network else METHODS

    def model_overrides(self) -> dict[str, Any]:
        return {
            "d_model": self.d_model,
            "num_layers": self.num_layers,
            "nhead": self.nhead,
            "dim_feedforward": self.dim_feedforward,
            **self.extra,
        }

    def train_overrides(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "warmup": self.warmup,
            "lr": self.lr,
            "lr_min": self.lr_min,
            "batch_size": self.batch_size,
            "precision": self.precision,
        }


@dataclass
class DemoResult:
    scores: dict[str, dict[str, float]]
    """Method -> the ten test scores."""
    results: Path
    pictures: list[Path]
    clip: str | None
    reused: bool = False
    """Nothing was generated or trained: the data and every method's finished run were reused."""


def precision_words(precision: str) -> str:
    """How the demo's lines name a precision: ``float32`` or ``bfloat16 autocast``."""
    return precision if precision == "float32" else f"{precision} autocast"


def scores_title(cfg: DemoConfig) -> str:
    """The line above the demo's score table: metric, test clips and precision."""
    clips = count(cfg.test_clips, "synthetic clip")
    return f"Test scores (F-score %, {clips}, {precision_words(cfg.precision)})"


def _run_state(folder: Path, model_cfg: Any, train_cfg: Any, same_data: bool) -> str:
    """``none`` (no run), ``finished`` or ``unfinished`` (same settings and data), or ``other``."""
    from avparse.train.runfolder import run_state

    state = run_state(folder, model_cfg, train_cfg)
    return "other" if state != "none" and not same_data else state


def _say(cfg: DemoConfig, text: str) -> None:
    if cfg.notes:
        print(text, flush=True)


def method_configs(cfg: DemoConfig, method: Method) -> tuple[Any, Any]:
    """Model and training configs of one method: its preset, narrowed as the demo says."""
    from avparse.model.config import PRESETS, model_config
    from avparse.train.recipe import recipe

    preset = method.preset if cfg.features == "valor" else "valor++"
    overrides = dict(cfg.model_overrides())
    if preset != method.preset:  # valor++ features for every method; the loss picks the rest
        overrides.update({k: v for k, v in PRESETS["valor++"].model.items() if "feature" in k})
    if method.arch is not None:
        overrides["arch"] = method.arch
    model_cfg = model_config(preset, overrides)
    loss = {"loss": method.loss} if method.loss else {}
    train_cfg = recipe(method.preset, {**cfg.train_overrides(), "task": "llp", **loss})
    return model_cfg, train_cfg


def train_method(
    cfg: DemoConfig,
    data: Path,
    method: Method,
    data_settings: dict | None = None,
    store: Path | None = None,
) -> tuple[dict[str, float], bool]:
    """Train (or reuse) one method's run under ``cfg.out/method.key`` on ``data``; returns its
    test scores and whether it trained (False: a finished run was reused). ``data_settings``
    identify the data (a run on other data is trained again). ``store``: the packed store (default ``data/packed``); the demo's fused-teacher root shares
    the main root's (its feature files are links to the same files, so only the small harvest
    arrays are packed again when the root changes)."""
    from avparse.train.loop import train
    from avparse.utils.atomic import write_json
    from avparse.utils.jsonio import read_json_object

    model_cfg, train_cfg = method_configs(cfg, method)
    folder = cfg.out / method.key
    runs_file = cfg.out / RUNS_FILE
    runs = read_json_object(runs_file, "demo runs file") if runs_file.is_file() else {}
    same_data = data_settings is None or runs.get(method.key) == data_settings
    state = _run_state(folder, model_cfg, train_cfg, same_data)
    notes = {
        "other": "other settings or data; training again",
        "finished": "finished run with these settings, reused",
        "unfinished": "unfinished run with these settings, resumed",
    }
    if state != "finished":
        _say(cfg, f"training {method.title} ({count(cfg.epochs, 'epoch')})")
    if state in notes:
        _say(cfg, f"{folder}: {notes[state]}")
    if data_settings is not None:
        write_json(runs_file, {**runs, method.key: data_settings})
    result = train(
        data, folder, model_cfg, train_cfg, preset=method.preset,
        resume=state in ("finished", "unfinished"), overwrite=state == "other",
        progress=cfg.progress, epoch_lines=cfg.notes, store=store,
    )  # fmt: skip
    if not result.test_scores:
        raise AvparseError(f"{folder}: the run has no test scores")
    return {k: float(result.test_scores[k]) for k in SCORE_KEYS}, state != "finished"


def pick_clip(audio: np.ndarray, visual: np.ndarray) -> int:
    """A telling test clip: most segments where audio and visual truth disagree, then most
    events (first such clip, so the choice is deterministic)."""
    unaligned = (audio != visual).sum((1, 2))
    events = audio.sum((1, 2)) + visual.sum((1, 2))
    return int(np.lexsort((-events, -unaligned))[0])


def draw_timelines(cfg: DemoConfig, data: Path) -> tuple[list[Path], str]:
    """One PNG per method of the chosen test clip: truth (hatched) vs prediction (filled)."""
    from avparse.data.layout import LLP_FILES
    from avparse.data.llp import LLPAnnotations
    from avparse.model.checkpoint import load_folder
    from avparse.parsing.events import Window, build_result
    from avparse.parsing.plot import plot_timeline, truth_events
    from avparse.train.evaluate import predict
    from avparse.train.loop import MODEL_DIR
    from avparse.train.tasks import LoadRequest, SplitData, get_task
    from avparse.vocab import LLP

    ann = LLPAnnotations(data)
    audio, visual = ann.dense("test")
    i = pick_clip(audio, visual)
    filename = ann.weak("test").filenames[i]
    truth = truth_events(
        filename, LLP, data / LLP_FILES["dense_audio"], data / LLP_FILES["dense_visual"]
    )
    pictures = []
    for method in cfg.methods:
        folder = cfg.out / method.key / MODEL_DIR
        model, config = load_folder(folder)
        split = get_task("llp").load(LoadRequest(data, None, "test", config))
        one = SplitData("test", [filename], {k: v[i : i + 1] for k, v in split.inputs.items()})
        frame_prob, video_prob = predict(model, one)
        result = build_result(
            filename, 10.0, [Window(0.0, 10.0, frame_prob[0], video_prob[0])], LLP.names,
            LLP.display_names, mode=method.title, model=str(folder),
        )  # fmt: skip
        picture = cfg.out / f"timeline_{method.key}.png"
        pictures.append(plot_timeline(result, picture, truth=truth))
    return pictures, filename


def format_table(scores: dict[str, dict[str, float]]) -> str:
    """The ten numbers of each method side by side (columns titled as in :data:`METHODS`)."""
    names = {
        "seg": "segment", "evt": "event",
        "a": "Audio", "v": "Visual", "av": "Audio-Visual", "type": "Type@AV", "event": "Event@AV",
    }  # fmt: skip
    titles = {m.key: m.title for m in (*METHODS, UWAV_NETWORK)}
    methods = list(scores)
    head = "".join(f"{titles.get(m, m.upper()):>13}" for m in methods)
    lines = [f"{'level':<9}{'metric':<14}" + head]
    for key in SCORE_KEYS:
        level, metric = key.split("_", 1)
        row = "".join(f"{scores[m][key]:>13.2f}" for m in methods)
        lines.append(f"{names[level]:<9}{names[metric]:<14}{row}")
    return "\n".join(lines)


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Generate (or reuse) the data, train every method, score them, write results and PNGs."""
    from avparse.synthetic import COMPLETE_MARKER, fused_root, generate_llp
    from avparse.utils.atomic import write_json
    from avparse.utils.jsonio import read_json_object

    cfg.out = Path(cfg.out)
    data = cfg.out / "data"
    marker = data / COMPLETE_MARKER
    before = marker.stat().st_mtime_ns if marker.is_file() else None
    _say(cfg, f"data: {data}")
    generate_llp(
        data, n_train=cfg.clips, n_val=cfg.val_clips, n_test=cfg.test_clips,
        features=cfg.features, seed=cfg.seed, overwrite=True, frame_dtype=FRAME_DTYPE,
    )  # fmt: skip
    reused = before == marker.stat().st_mtime_ns
    if reused:
        _say(cfg, "data: finished synthetic set with these settings, reused")
    elif before is not None:
        _say(cfg, "data: other settings, generated again")
    settings = read_json_object(marker, "synthetic data marker")
    roots = {"modality": data, "fused": fused_root(data, cfg.out / "data_fused")}
    scores = {}
    for method in cfg.methods:
        scores[method.key], trained = train_method(
            cfg, roots[method.teacher], method, settings, store=data / "packed"
        )
        reused = reused and not trained
    results = cfg.out / "results.json"
    write_json(results, scores)
    pictures: list[Path] = []
    clip = None
    if cfg.plot:
        pictures, clip = draw_timelines(cfg, data)
    write_json(cfg.out / "demo_config.json", {**asdict(cfg), "out": str(cfg.out)})
    return DemoResult(scores, results, pictures, clip, reused)
