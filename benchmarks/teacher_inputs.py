"""How much the published teacher inputs change the teachers' logits (issue 12 item 5).

Decodes one clip both ways (``published``: 10 of the 8 fps frames, bilinear resize without
antialiasing from the video's size, int16 audio; ``0.1``: 10 of all frames, swscale bicubic to
224 while decoding, float audio), runs real-size random-weight CLIP ViT-L/14 and CLAP HTS-AT
fused (:func:`avparse.teachers.tiny.save_full_size_teachers`, no download) on both, and prints
the differences of the logits, the CLIP embeddings and the CLAP token maps. Run by hand::

    .venv/bin/python benchmarks/teacher_inputs.py [VIDEO] [--models DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

REAL = REPO.parent / "shared" / "data" / "llp" / "video" / "BjCEufrlXm4.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=REAL)
    parser.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "avparse-full")
    args = parser.parse_args()

    import torch

    from avparse.media import decode_clip
    from avparse.media.decode import chunk_bounds
    from avparse.teachers.clap import AudioTeacher
    from avparse.teachers.clip import VisualTeacher
    from avparse.teachers.tiny import save_full_size_teachers
    from avparse.vocab import LLP

    torch.manual_seed(0)
    clip_dir, clap_dir = save_full_size_teachers(args.models)
    out = {}
    for inputs in ("published", "0.1"):
        visual = VisualTeacher(clip_dir, vocab=LLP, device="cpu", inputs=inputs)
        audio = AudioTeacher(clap_dir, vocab=LLP, device="cpu", inputs=inputs)
        clip = decode_clip(args.video, **visual.decoding())
        assert clip.frames is not None and clip.audio is not None
        emb = visual.embed_frames(clip.frames)
        wave = clip.audio
        chunks = [wave[s : s + n] for s, n in chunk_bounds(len(wave))]
        out[inputs] = {
            "frames": clip.frame_indices,
            "clip_features": emb,
            "clip_logits": visual.scores(emb),
            "clap_logits": audio.scores(audio.embed(audio.prepare(chunks))),
            "clap_features": audio.token_maps(audio.prepare([wave]))[0],
            "scales": (visual.logit_scale, audio.logit_scale),
        }
    new, old = out["published"], out["0.1"]
    print(f"video {args.video}")
    print(f"teacher frame indices: published {new['frames'].tolist()} (of the 8 fps frames)")
    print(f"                       0.1       {old['frames'].tolist()} (of all frames)")
    print(f"logit scales: CLIP {new['scales'][0]:.1f}, CLAP {new['scales'][1]:.1f}")
    for key in ("clip_logits", "clap_logits", "clip_features", "clap_features"):
        d = np.abs(new[key] - old[key])
        spread = float(np.std(new[key]))
        print(
            f"{key:14s} max |diff| {d.max():.4f}  mean |diff| {d.mean():.4f}  "
            f"(std of the values {spread:.4f})"
        )
    for key in ("clip_features",):
        cos = np.sum(new[key] * old[key], axis=1)
        print(f"{key} cosine per frame: min {cos.min():.4f} mean {cos.mean():.4f}")


if __name__ == "__main__":
    main()
