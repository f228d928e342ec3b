"""Per-clip throughput of ``avparse harvest`` and ``avparse parse`` against the published path.

Real-size random-weight models (same compute as the checkpoints, no download): CLIP ViT-L/14 and
CLAP HTS-AT fused (:func:`avparse.teachers.tiny.save_full_size_teachers`), R(2+1)D-18, and a
``valor++`` student. Clips: the real LLP clip (when ``../shared`` is present) and synthetic
320x240 30 fps clips with sound, 10 s each.

* **harvest** (teachers + R(2+1)D-18, a complete ``valor++`` root): ``run_harvest`` (one decode per
  clip in worker threads, clips batched per model call, ``inference_mode``) against the published
  scripts' path: per clip, frames, audio and 8 fps snippets decoded separately, CLIP run twice
  (``model(pixels, prompts)`` for the labels, ``get_image_features`` for the features), CLAP's
  feature extractor on each chunk and on the whole clip, float32, ``no_grad``.
* **parse** (student mode, VALOR++ inputs): ``Parser.parse`` against the published feature path
  (CLIP features, CLAP token map and R(2+1)D-18 features, each from its own decode) plus the
  student's forward pass.

Each of ours runs in float32 (the default) and, where the CPU has AMX or AVX512-BF16, in bfloat16;
the largest logit change against float32 is printed. Ratios are measured in the same run; run
by hand (about 10 minutes on 2 cores with 2 clips)::

    .venv/bin/python benchmarks/parse.py [--clips 2] [--precisions float32,bfloat16]
    .venv/bin/python benchmarks/parse.py --profile    # seconds of each part of one clip

* **scale** (``--scale``, issue 22): the time to list and plan 100,000 paths (a folder tree of
  empty files, as a folder, as ``--list``, and the rerun that finds 100,000 finished outputs;
  goal: under 10 s each), and videos per second of ``avparse parse`` on a collection with 1 and 2
  processes (``torchrun``), zero-shot, with the tiny teachers (``--real``: the real-size ones;
  ``--device cuda`` on a GPU)::

    .venv/bin/python benchmarks/parse.py --scale [--paths 100000] [--videos 16] [--real]

* **agreement** (``--agreement``, issue 17): bfloat16 weights against float32 on the real clip::

    .venv/bin/python benchmarks/parse.py --agreement  # bfloat16 vs float32 decisions, real clip
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

REAL = REPO.parent / "shared" / "data" / "llp" / "video" / "BjCEufrlXm4.mp4"


def make_inputs(folder: Path, clips: int) -> tuple[Path, Path, Path, Path]:
    """Videos, a weak-label CSV, R(2+1)D-18 weights and a valor++ student folder."""
    import shutil

    import torch

    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.media.synthetic import write_test_video
    from avparse.model.checkpoint import save_student
    from avparse.model.config import model_config
    from avparse.model.han import HAN

    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    names = []
    if REAL.is_file():
        shutil.copy(REAL, videos / REAL.name)
        names.append(REAL.stem)
    i = 0
    while len(names) < clips:
        name = f"synthclip{i:02d}"
        write_test_video(videos / f"{name}.mp4", size=(240, 320), fps=30, tone_hz=330.0 + 40 * i)
        names.append(name)
        i += 1
    labels = folder / "labels.csv"
    labels.write_text(
        "filename\tevent_labels\n" + "".join(f"{n}_0_10\tSpeech,Dog\n" for n in names[:clips])
    )
    torch.manual_seed(0)
    weights = folder / "r2plus1d_18.pth"
    torch.save(R2Plus1D18().state_dict(), weights)
    config = model_config("valor++")
    student = folder / "student"
    save_student(HAN(config), config, student)
    return videos, labels, weights, student


def published_inputs(video: Path):
    """The published scripts' inputs of one clip, each from its own decode: CLIP pixels (10 of
    the 8 fps frames, ToTensor + Resize + Normalize), the int16-rounded 48 kHz wave, and the 8 fps
    112 px frames of the R(2+1)D-18 snippets."""
    import torch

    from avparse.features.r2plus1d import snippets
    from avparse.media import decode_clip, teacher_frame_indices
    from avparse.teachers.clip import CLIP_MEAN, CLIP_STD

    frames = decode_clip(video, teacher_frames=False, audio=False, fps=8).rate_frames
    assert frames is not None
    picked = frames[teacher_frame_indices(len(frames))]
    x = torch.from_numpy(picked).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear")
    x = (x - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]
    wave = decode_clip(video, teacher_frames=False, audio=True).audio
    assert wave is not None
    wave = (np.clip(wave, -1, 1) * 32767).astype(np.int16) / 32767
    small = decode_clip(video, teacher_frames=False, audio=False, fps=8, fps_size=(112, 112))
    assert small.rate_frames is not None
    return x, wave, snippets(torch.from_numpy(small.rate_frames))


def token_map(clap_model, extractor, wave: np.ndarray):
    """CLAP's (1, 64, 768) token map of the whole clip, through the feature extractor."""
    whole = extractor([wave], sampling_rate=48_000, return_tensors="pt")
    whole["is_longer"][:] = False  # LAION's inference: a 10 s clip is not "longer"
    grid = clap_model.audio_model(
        input_features=whole["input_features"], is_longer=whole["is_longer"]
    ).last_hidden_state
    return grid.flatten(2).transpose(1, 2)


def naive_harvest(video: Path, r2p, prompts) -> np.ndarray:
    """One clip the published scripts' way (see the module docstring): its CLIP and CLAP logits."""
    import torch

    from avparse.media.decode import chunk_bounds

    clip_model, clip_tok, clap_model, clap_tok, extractor = prompts["models"]
    with torch.no_grad():
        x, wave, snips = published_inputs(video)
        # CLIP: two passes, the labels with the prompts, then the features
        text = clip_tok(prompts["clip"], padding=True, return_tensors="pt")
        visual = clip_model(pixel_values=x, **text).logits_per_image
        clip_model.get_image_features(pixel_values=x)
        # CLAP: the extractor per chunk, then on the whole clip
        chunks = [wave[s : s + n] for s, n in chunk_bounds(len(wave))]
        feats = extractor(chunks, sampling_rate=48_000, return_tensors="pt")
        feats["is_longer"][:] = False  # LAION's inference: no chunk is "longer" (no random pick)
        text = clap_tok(prompts["clap"], padding=True, return_tensors="pt")
        audio = clap_model(
            input_features=feats["input_features"], is_longer=feats["is_longer"], **text
        ).logits_per_audio
        token_map(clap_model, extractor, wave)
        r2p.features(snips)
    return np.stack([visual.numpy(), audio.numpy()])


def load_published(clip_dir: Path, clap_dir: Path, weights: Path, student_dir: Path):
    """The published path's models, loaded once: ``((CLIP, its tokenizer, CLAP, its tokenizer,
    CLAP's feature extractor), R(2+1)D-18, the student in eval mode)``."""
    import transformers

    from avparse.features.r2plus1d import load_r2plus1d18
    from avparse.model.checkpoint import load_student

    models = (
        transformers.CLIPModel.from_pretrained(clip_dir).eval(),
        transformers.AutoTokenizer.from_pretrained(clip_dir),
        transformers.ClapModel.from_pretrained(clap_dir).eval(),
        transformers.AutoTokenizer.from_pretrained(clap_dir),
        transformers.ClapFeatureExtractor.from_pretrained(clap_dir),
    )
    r2p = load_r2plus1d18(weights)
    student, _ = load_student(str(student_dir))
    student.eval()
    return models, r2p, student


def naive_parse(video: Path, models, r2p, student) -> None:
    """One clip's student inputs the published feature scripts' way, then the student."""
    import torch

    clip_model, _, clap_model, _, extractor = models
    with torch.no_grad():
        x, wave, snips = published_inputs(video)
        emb = clip_model.get_image_features(pixel_values=x)
        emb = getattr(emb, "pooler_output", emb)
        emb = emb / emb.norm(dim=-1, keepdim=True)
        audio = token_map(clap_model, extractor, wave)
        motion = r2p.features(snips)
        student(audio.float(), emb[None].float(), motion[None].float())


def profile(video: Path, clip_dir: Path, clap_dir: Path, weights: Path, student_dir: Path) -> None:
    """Seconds of each part of one clip on our path, per precision: what bounds the throughput."""
    import torch

    from avparse.features.extract import motion_features
    from avparse.features.r2plus1d import load_r2plus1d18
    from avparse.media import decode_clip
    from avparse.media.decode import chunk_bounds
    from avparse.model.checkpoint import load_student
    from avparse.teachers.clap import AudioTeacher
    from avparse.teachers.clip import VisualTeacher
    from avparse.vocab import LLP

    student, _ = load_student(str(student_dir))
    r2p = load_r2plus1d18(weights)
    for precision in ("float32", "bfloat16"):
        visual = VisualTeacher(clip_dir, vocab=LLP, device="cpu", precision=precision)
        audio = AudioTeacher(clap_dir, vocab=LLP, device="cpu", precision=precision)
        parts: dict[str, float] = {}

        def timed(name, fn, *a, parts=parts, **k):
            began = time.perf_counter()
            out = fn(*a, **k)
            parts[name] = time.perf_counter() - began
            return out

        clip = timed(
            "decode once", decode_clip, video, **visual.decoding(), fps=8, fps_size=(112, 112)
        )
        wave = clip.audio
        chunks = [wave[s : s + n] for s, n in chunk_bounds(len(wave))]
        emb = timed("CLIP ViT-L/14, 10 frames", visual.embed_frames, clip.frames)
        timed("CLAP mel inputs, 10 chunks + clip", audio.prepare, [*chunks, wave])
        inputs = audio.prepare(chunks)
        timed("CLAP HTS-AT, 10 chunks (harvest)", audio.embed, inputs)
        maps = timed("CLAP HTS-AT, token map", audio.token_maps, audio.prepare([wave]))
        motion = timed(
            "R(2+1)D-18, 10 snippets", motion_features, r2p, [clip.rate_frames], precision=precision
        )[0]
        with torch.inference_mode():
            timed(
                "student (valor++)",
                student,
                torch.from_numpy(maps),
                torch.from_numpy(emb[None]),
                torch.from_numpy(motion[None]),
            )
        total = sum(parts.values())
        print(f"profile of one clip, {precision}: {total:.1f} s")
        for name, seconds in parts.items():
            print(f"  {name:36s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")


def plan_scale(n: int, work: Path) -> None:
    """Seconds to list and plan ``n`` paths: a folder tree, a list file, a rerun."""
    import json
    import os

    from avparse.parsing.batch import _plan, collect_inputs
    from avparse.parsing.output import SOURCE_KEY, video_source

    tree = work / "tree"
    began = time.perf_counter()
    for i in range(n):
        folder = tree / f"{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"v{i:06d}.mp4").touch()
    print(f"made {n} empty files in {time.perf_counter() - began:.1f} s")
    listing = work / "list.txt"
    out = work / "out"
    out.mkdir()
    listing.write_text("".join(f"{p}\n" for p in sorted(tree.rglob("*.mp4"))))
    for name, args in (("folder", ([tree], None)), ("--list", ([], listing))):
        began, cpu = time.perf_counter(), time.process_time()
        paths = collect_inputs(*args)
        listed = time.perf_counter() - began
        plan = _plan(paths, out, overwrite=False)
        total, cpu = time.perf_counter() - began, time.process_time() - cpu
        assert len(plan.todo) == n
        print(f"list + plan {n} paths ({name}): {total:.2f} s wall, {cpu:.2f} s CPU "
              f"(listing {listed:.2f} s wall)")  # fmt: skip
    for p in paths:  # a finished output per video, as a rerun finds them
        (out / f"{p.stem}.json").write_text(json.dumps({SOURCE_KEY: video_source(p)}))
    os.sync()
    began, cpu = time.perf_counter(), time.process_time()
    plan = _plan(collect_inputs([tree]), out, overwrite=False)
    assert not plan.todo
    print(f"rerun: list + plan {n} paths, all finished: {time.perf_counter() - began:.2f} s "
          f"wall, {time.process_time() - cpu:.2f} s CPU")  # fmt: skip
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def throughput(videos_n: int, real: bool, device: str, work: Path) -> None:
    """Videos per second of ``avparse parse`` (zero-shot) with 1 and 2 processes."""
    import os
    import socket
    import subprocess

    from avparse.media.synthetic import write_test_video
    from avparse.teachers.tiny import save_full_size_teachers, save_tiny_teachers

    if real:
        clip_dir, clap_dir = save_full_size_teachers(Path(tempfile.gettempdir()) / "avparse-full")
    else:
        clip_dir, clap_dir = save_tiny_teachers(work / "tiny")
    videos = work / "videos"
    for i in range(videos_n):
        write_test_video(videos / f"v{i:03d}.mp4", seconds=10, size=(320, 240), fps=30)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")
    args = ["-m", "avparse", "parse", str(videos), "--zero-shot", "--vocab", "llp",
            "--clip-model", str(clip_dir), "--clap-model", str(clap_dir), "--device", device,
            "--no-progress", "--quiet"]  # fmt: skip
    for procs in (1, 2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launch = [sys.executable] if procs == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            f"--nproc_per_node={procs}", "--master_addr=127.0.0.1", f"--master_port={port}",
        ]  # fmt: skip
        threads = max(1, (os.cpu_count() or 1) // procs)
        began = time.perf_counter()
        proc = subprocess.run([*launch, *args, "--out", str(work / f"out{procs}")],
                              env={**env, "OMP_NUM_THREADS": str(threads)},
                              capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - began
        assert proc.returncode == 0, proc.stderr[-2000:]
        print(f"{procs} process(es), {threads} threads each, {'real-size' if real else 'tiny'} "
              f"models, {device}: {videos_n} videos of 10 s in {seconds:.1f} s = "
              f"{videos_n / seconds:.2f} videos/s (model loading included)")  # fmt: skip


def agreement(clip_dir: Path, clap_dir: Path, precisions: list[str]) -> None:
    """``--agreement``: bfloat16 weights against float32 on the real clip (issue 17 item 2).

    One folder with the real clip alone; per precision: ``avparse harvest`` (the teachers'
    segment-class decisions and logits), ``Parser.parse`` zero-shot (the teachers' decisions
    through the calibrated rule) and with a random ``valor++`` student (its decisions and
    probabilities), each timed; the published path's student parse of the same clip is timed
    in the same run. Prints equal decisions in %, max / mean |logit difference| and the ratios.
    """
    import torch

    from avparse.harvest.job import HarvestConfig, run_harvest
    from avparse.harvest.outputs import ClipOutputs
    from avparse.parsing.api import Parser

    if not REAL.is_file():
        raise SystemExit(f"--agreement needs the real clip {REAL}")
    work = Path(tempfile.mkdtemp(prefix="avparse-bench-agree-"))
    videos, labels, weights, student_dir = make_inputs(work, 1)
    video = videos / REAL.name
    models, r2p, student = load_published(clip_dir, clap_dir, weights, student_dir)
    began = time.perf_counter()
    naive_parse(video, models, r2p, student)
    naive_s = time.perf_counter() - began
    del models, r2p
    found: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for precision in precisions:
        got, took = {}, {}
        out = work / f"root-{precision}"
        result = run_harvest(
            HarvestConfig(videos=videos, labels=labels, out=out, clip_model=str(clip_dir),
                          clap_model=str(clap_dir), device="cpu", batch_size=1,
                          r2plus1d=str(weights), precision=precision, progress=False)
        )  # fmt: skip
        assert result.harvested == 1, result.failures
        took["harvest (models)"] = result.model_seconds
        clip = ClipOutputs(out, REAL.stem)
        for m in ("visual", "audio"):
            got[f"harvest {m} logits"] = np.load(clip.scores(m))
            got[f"harvest {m} decisions"] = np.load(clip.hard(m)) > 0.5
        for mode, kwargs in (
            ("zero-shot", {"zero_shot": True, "vocab": "llp"}),
            ("student", {"model": str(student_dir), "r2plus1d": str(weights)}),
        ):
            parser = Parser(clip_model=str(clip_dir), clap_model=str(clap_dir),
                            precision=precision, **kwargs)  # type: ignore[arg-type]  # fmt: skip
            began = time.perf_counter()
            res = parser.parse(video)
            took[f"parse {mode}"] = time.perf_counter() - began
            got[f"parse {mode} decisions"] = np.stack([res.audio, res.visual]).astype(bool)
            got[f"parse {mode} probabilities"] = np.asarray(res.frame_prob, np.float32)
            del parser
        found[precision], seconds[precision] = got, took
    print(f"real clip {REAL.name}, real-size random teachers; torch threads "
          f"{torch.get_num_threads()}; load average {__import__('os').getloadavg()[0]:.2f}")  # fmt: skip
    print(f"published path, student parse: {naive_s:.2f} s")
    for precision in precisions:
        print(f"[{precision}] " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds[precision].items())
              + f"; parse student: {naive_s / seconds[precision]['parse student']:.2f}x the "
              "published path")  # fmt: skip
    if "float32" in found:
        for precision in precisions:
            if precision == "float32":
                continue
            print(f"{precision} vs float32:")
            for key, ref in found["float32"].items():
                low = found[precision][key]
                if ref.dtype == bool:
                    equal = 100.0 * float((ref == low).mean())
                    print(f"  {key:36s} {equal:6.2f} % of {ref.size} equal "
                          f"({int(ref.sum())} positive in float32)")  # fmt: skip
                else:
                    d = np.abs(ref.astype(np.float64) - low)
                    print(f"  {key:36s} max |diff| {d.max():.4f}, mean {d.mean():.4f} "
                          f"(float32 range {ref.min():.2f} .. {ref.max():.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="collections: plan and videos/s")
    parser.add_argument("--paths", type=int, default=100_000, help="--scale: paths to plan")
    parser.add_argument("--videos", type=int, default=16, help="--scale: videos to parse")
    parser.add_argument("--real", action="store_true", help="--scale: real-size teachers")
    parser.add_argument("--device", default="cpu", help="--scale: cpu or cuda")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "avparse-full")
    parser.add_argument(
        "--profile", action="store_true", help="only time the parts of one clip on our path"
    )
    parser.add_argument(
        "--agreement",
        action="store_true",
        help="bfloat16 weights vs float32 on the real clip: equal decisions, logit differences",
    )
    args = parser.parse_args()
    if args.scale:
        work = Path(tempfile.mkdtemp(prefix="avparse-bench-scale-"))
        plan_scale(args.paths, work)
        if args.videos:
            throughput(args.videos, args.real, args.device, work)
        return

    import torch
    import transformers

    from avparse.harvest.job import HarvestConfig, run_harvest
    from avparse.harvest.outputs import ClipOutputs
    from avparse.parsing.api import Parser
    from avparse.teachers.tiny import save_full_size_teachers
    from avparse.vocab import LLP

    transformers.utils.logging.set_verbosity_error()
    capability = torch.backends.cpu.get_cpu_capability()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    bf16 = "amx_bf16" in flags or "avx512_bf16" in flags
    precisions = [p for p in args.precisions.split(",") if p == "float32" or bf16]
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"{capability}, bf16 {'yes' if bf16 else 'no'}; torch {torch.__version__}"
    )
    clip_dir, clap_dir = save_full_size_teachers(args.models)
    if args.agreement:
        agreement(clip_dir, clap_dir, args.precisions.split(","))
        return
    work = Path(tempfile.mkdtemp(prefix="avparse-bench-parse-"))
    videos, labels, weights, student_dir = make_inputs(work, args.clips)
    paths = sorted(videos.iterdir())
    n = len(paths)
    if args.profile:
        profile(paths[0], clip_dir, clap_dir, weights, student_dir)
        return

    # --- the published path: models loaded once, then clip by clip -----------------------------
    models, r2p, student = load_published(clip_dir, clap_dir, weights, student_dir)
    prompts = {"models": models, "clip": LLP.clip_prompts(), "clap": LLP.clap_prompts()}
    began = time.perf_counter()
    naive_scores = np.concatenate([naive_harvest(video, r2p, prompts) for video in paths])
    naive_h = (time.perf_counter() - began) / n
    began = time.perf_counter()
    for video in paths:
        naive_parse(video, models, r2p, student)
    naive_p = (time.perf_counter() - began) / n
    del models, prompts

    # --- ours ------------------------------------------------------------------------------------
    rows = [
        ("harvest", "published path", naive_h, None),
        ("parse", "published path", naive_p, None),
    ]
    scores: dict[str, np.ndarray] = {}
    for precision in precisions:
        out = work / f"root-{precision}"
        config = HarvestConfig(
            videos=videos,
            labels=labels,
            out=out,
            clip_model=str(clip_dir),
            clap_model=str(clap_dir),
            device="cpu",
            batch_size=n,
            r2plus1d=str(weights),
            precision=precision,
            progress=False,
        )
        result = run_harvest(config)
        assert result.harvested == n, result.failures
        per_clip = result.model_seconds / n
        ids = sorted(p.stem[:11] for p in paths)
        scores[precision] = np.stack(
            [np.load(ClipOutputs(out, c).scores(m)) for c in ids for m in ("visual", "audio")]
        )
        change = None
        if precision != "float32" and "float32" in scores:
            change = float(np.abs(scores[precision] - scores["float32"]).max())
        rows.append(("harvest", f"avparse, {precision}", per_clip, change))
        if precision == "float32":  # both paths compute the same thing
            d = np.abs(scores[precision] - naive_scores)
            print(
                "harvest logits, avparse float32 vs the published path: max |diff| "
                f"CLIP {d[0::2].max():.2e}, CLAP {d[1::2].max():.2e}"
            )
        p = Parser(
            str(student_dir),
            clip_model=str(clip_dir),
            clap_model=str(clap_dir),
            r2plus1d=str(weights),
            precision=precision,
        )
        began = time.perf_counter()
        for video in paths:
            p.parse(video)
        rows.append(("parse", f"avparse, {precision}", (time.perf_counter() - began) / n, None))
        del p

    print(f"{n} clips of 10 s; seconds per clip (lower is better), ratio = published / avparse")
    for work_name in ("harvest", "parse"):
        base = next(
            r[2] for r in rows if r[0] == work_name and r[3] is None and "published" in r[1]
        )
        for name, path, seconds, change in rows:
            if name != work_name:
                continue
            note = f"  max |logit change| vs float32 {change:.4f}" if change is not None else ""
            print(f"{name:8s} {path:24s} {seconds:8.2f} s  {base / seconds:5.2f}x{note}")


if __name__ == "__main__":
    main()
