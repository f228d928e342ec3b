"""`avparse parse` end to end on tiny offline models: student, zero-shot, batches, bad files, API.

Models: D's tiny CLIP; the tiny CLAP variant whose token map has the real model's 64 tokens
(``save_tiny_teachers(..., clap_tokens=64)``, the VALOR++ student's audio input); a tiny
VALOR++-shaped student saved in our folder format; a randomly initialised full-width R(2+1)D-18
run on 2 frames per second at 16 px.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from avparse.errors import AvparseError  # noqa: E402
from avparse.media.synthetic import write_test_video  # noqa: E402
from avparse.parsing.events import Event, ParseResult  # noqa: E402

FAST = ["--snippet-fps", "2", "--snippet-size", "16"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.model.checkpoint import save_student
    from avparse.model.config import model_config
    from avparse.model.han import HAN
    from avparse.teachers.tiny import save_tiny_teachers

    root = tmp_path_factory.mktemp("models")
    clip_dir, clap_dir = save_tiny_teachers(root)
    _, clap64 = save_tiny_teachers(root, clap_tokens=64)  # (64, 64) maps
    torch.manual_seed(0)
    config = model_config(
        "valor++",
        d_model=16,
        num_layers=1,
        nhead=2,
        dim_feedforward=32,
        audio_dim=64,
        visual_dim=16,
    )
    student = save_student(HAN(config), config, root / "student")
    old = model_config("valor", d_model=16, num_layers=1, nhead=2, dim_feedforward=32)
    valor = save_student(HAN(old), old, root / "valor")
    r21d = root / "r2plus1d_18.pth"
    torch.save(R2Plus1D18().state_dict(), r21d)
    return {
        "clip": clip_dir,
        "clap": clap64,
        "clap256": clap_dir,
        "student": student,
        "valor": valor,
        "r2plus1d": r21d,
    }


def _teachers(models) -> list[str]:
    return ["--clip-model", str(models["clip"]), "--clap-model", str(models["clap"])]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    return {
        "short": write_test_video(root / "short.mp4", seconds=4, size=(32, 32), fps=8),
        "long": write_test_video(root / "long.mp4", seconds=25, size=(32, 32), fps=8),
        "silent": write_test_video(
            root / "silent.mp4", seconds=10, size=(32, 32), fps=8, tone_hz=None
        ),
        "corrupt": corrupt,
    }


def test_real_clip_writes_json_tsv_png_html(cli, models, llp_video, tmp_path) -> None:
    truth = tmp_path / "truth_visual.tsv"
    truth.write_text("filename\tonset\toffset\tevent_labels\nBjCEufrlXm4_20_30\t0\t4\tDog\n")
    out = tmp_path / "out"
    res = cli(
        "parse",
        llp_video,
        "--model",
        models["student"],
        *_teachers(models),
        "--r2plus1d",
        models["r2plus1d"],
        *FAST,
        "--out",
        out,
        "--plot",
        "--html",
        "--truth-visual",
        truth,
    )
    assert res.code == 0, res.err
    stem = llp_video.stem
    for ext in ("json", "tsv", "png", "html"):
        assert (out / f"{stem}.{ext}").is_file(), ext
    data = json.loads((out / f"{stem}.json").read_text())
    assert data["mode"] == "student" and data["has_audio"] and data["windows"] == 1
    assert data["duration"] == pytest.approx(10.0, abs=0.1)
    assert len(data["classes"]) == 25 and len(data["segments"]) == 10
    rows = (out / f"{stem}.tsv").read_text().splitlines()
    assert len(rows) == len(data["events"]) + 1
    for row, event in zip(rows[1:], data["events"], strict=True):
        modality, label, onset, offset, conf = row.split("\t")
        assert (modality, label) == (event["modality"], event["label"])
        assert float(onset) == pytest.approx(event["onset"], abs=1e-3)
        assert float(offset) == pytest.approx(event["offset"], abs=1e-3)
        assert 0.0 <= float(conf) <= 1.0
    assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    page = (out / f"{stem}.html").read_text()
    assert f'src="../{llp_video.name}"' not in page  # the link is relative to the page
    assert "BjCEufrlXm4.mp4" in page and '"truth": [{' in page
    assert str(out / stem) in res.out
    # the same run again skips the finished video instead of overwriting it
    again = cli(
        "parse",
        llp_video,
        "--model",
        models["student"],
        *_teachers(models),
        "--r2plus1d",
        models["r2plus1d"],
        *FAST,
        "--out",
        out,
    )
    assert again.code == 0 and "skipped" in again.out


def test_batch_continues_past_bad_files(cli, models, clips, tmp_path) -> None:
    out = tmp_path / "out"
    videos = [
        clips["short"],
        clips["corrupt"],
        clips["long"],
        clips["silent"],
        tmp_path / "missing.mp4",
    ]
    res = cli(
        "parse",
        *videos,
        "--model",
        models["student"],
        *_teachers(models),
        "--r2plus1d",
        models["r2plus1d"],
        *FAST,
        "--out",
        out,
        "--html",
    )
    assert res.code == 1
    errors = [line for line in res.err.splitlines() if "error:" in line]
    assert len(errors) == 2
    assert str(clips["corrupt"]) in errors[0] and "missing.mp4" in errors[1]
    assert "2 of 5 videos failed" in res.err
    short = json.loads((out / "short.json").read_text())
    assert short["duration"] == pytest.approx(4.0, abs=0.2) and short["windows"] == 1
    assert short["segments"][1][0] == pytest.approx(short["duration"] / 10, abs=1e-3)
    long = json.loads((out / "long.json").read_text())
    assert long["windows"] == 3 and long["duration"] == pytest.approx(25.0, abs=0.2)
    assert len(long["segments"]) == 30 and long["segments"][20][0] == pytest.approx(20.0)
    silent = json.loads((out / "silent.json").read_text())
    assert not silent["has_audio"] and "no audio stream" in " ".join(silent["notes"])
    assert all(e["modality"] == "visual" for e in silent["events"])
    assert "results.jsonl" in (out / "index.html").read_text()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows].count("parsed") == 3 and len(rows) == 5
    long_row = next(r for r in rows if r["output"] == "long")
    assert "long.html" in long_row["files"] and long_row["duration"] == long["duration"]
    assert "results.js" in {p.name for p in out.iterdir()}
    assert not (out / "corrupt.json").exists()


def test_zero_shot_custom_vocabulary(cli, models, clips, tmp_path) -> None:
    classes = "dog barking,<script>alert(1)</script>,car engine"
    low = tmp_path / "low.json"  # every class above threshold everywhere: events span the clip
    low.write_text(
        json.dumps(
            {
                "vocabulary": "custom",
                "visual": {c: -50.0 for c in classes.split(",")},
                "audio": {c: -50.0 for c in classes.split(",")},
            }
        )
    )
    out = tmp_path / "zs"
    res = cli(
        "parse",
        clips["short"],
        "--zero-shot",
        "--classes",
        classes,
        *_teachers(models),
        "--thresholds",
        low,
        "--out",
        out,
        "--html",
        "--plot",
    )
    assert res.code == 0, res.err
    data = json.loads((out / "short.json").read_text())
    assert data["mode"] == "zero-shot" and data["classes"] == classes.split(",")
    spans = {(e["modality"], e["label"]): (e["onset"], e["offset"]) for e in data["events"]}
    assert len(spans) == 9  # 3 classes x (audio, visual, audio-visual), each one whole-clip event
    assert all(on == 0.0 and off == pytest.approx(data["duration"]) for on, off in spans.values())
    assert "<script>alert(1)</script>" not in (out / "short.html").read_text()
    high = tmp_path / "high.json"
    high.write_text(
        json.dumps(
            {
                "vocabulary": "custom",
                "visual": {c: 50.0 for c in classes.split(",")},
                "audio": {c: 50.0 for c in classes.split(",")},
            }
        )
    )
    res = cli(
        "parse",
        clips["short"],
        "--zero-shot",
        "--classes",
        classes,
        *_teachers(models),
        "--thresholds",
        high,
        "--out",
        out,
        "--overwrite",
    )
    assert res.code == 0 and json.loads((out / "short.json").read_text())["events"] == []


def test_zero_shot_defaults_and_llp(models, clips) -> None:
    import avparse
    from avparse.parsing.zeroshot import default_thresholds, zero_shot_vocabulary

    assert default_thresholds() == {"visual": 15.0, "audio": 2.0}
    vocab, notes = zero_shot_vocabulary(classes="a, b")
    assert vocab.thresholds("visual") == [15.0, 15.0] and len(notes) == 2
    llp, notes = zero_shot_vocabulary(vocab="llp")
    assert llp.thresholds("visual")[0] == 20.0 and notes == []
    with pytest.raises(AvparseError, match="exactly one"):
        zero_shot_vocabulary()
    result = avparse.parse(
        clips["silent"], vocab="llp", clip_model=models["clip"], clap_model=models["clap"]
    )
    assert isinstance(result, ParseResult) and result.mode == "zero-shot"
    assert len(result.classes) == 25 and not result.has_audio
    assert result.frame_prob[:, 0].max() == 0.0  # no sound, no audio probability


def test_library_api_returns_typed_events(models, clips) -> None:
    import avparse

    results = avparse.parse(
        [clips["short"], clips["silent"]],
        model=str(models["student"]),
        clip_model=models["clip"],
        clap_model=models["clap"],
        r2plus1d=models["r2plus1d"],
        snippet_fps=2,
        snippet_size=16,
    )
    assert [type(r) for r in results] == [ParseResult, ParseResult]
    short = results[0]
    assert short.frame_prob.shape == (10, 2, 25) and short.video_prob.shape == (10, 25)
    assert all(isinstance(e, Event) for e in short.events)
    # events are exactly the decision rule's runs: re-derive them from the probabilities
    p, vp = short.frame_prob, short.video_prob
    audio = (p[:, 0] >= 0.5) & (vp >= 0.5)
    assert np.array_equal(audio, short.audio)
    assert sum(e.modality == "audio" for e in short.events) == sum(
        int(np.diff(np.concatenate([[0], col.astype(int), [0]])).clip(0).sum()) for col in audio.T
    )


def test_models_that_cannot_parse_video_are_refused(cli, models, clips, tmp_path) -> None:
    res = cli(
        "parse",
        clips["short"],
        "--model",
        models["valor"],
        *_teachers(models),
        "--r2plus1d",
        models["r2plus1d"],
        "--out",
        tmp_path,
    )
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1
    assert "vggish/res152" in res.err and "avparse evaluate" in res.err
    res = cli(
        "parse",
        clips["short"],
        "--model",
        models["student"],
        "--clip-model",
        models["clip"],
        "--clap-model",
        models["clap256"],
        "--r2plus1d",
        models["r2plus1d"],
        "--out",
        tmp_path,
    )
    assert res.code == 2 and "token maps" in res.err
    res = cli(
        "parse", clips["short"], "--model", models["student"], "--zero-shot", "--out", tmp_path
    )
    assert res.code == 2 and "not both" in res.err


def test_hub_id_offline_is_one_line(cli, clips, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    res = cli("parse", clips["short"], "--model", "someone/valorpp-llp", "--out", tmp_path)
    assert res.code == 2
    assert len(res.err.strip().splitlines()) == 1 and "someone/valorpp-llp" in res.err
    assert "offline" in res.err


def test_unexpected_failure_on_one_video_does_not_end_the_batch(
    cli, models, clips, tmp_path, monkeypatch
) -> None:
    from avparse.parsing.api import Parser

    real = Parser.parse

    def flaky(self, video):
        if Path(video).name == "short.mp4":
            raise RuntimeError("decoder exploded\nwith two lines")
        return real(self, video)

    monkeypatch.setattr(Parser, "parse", flaky)
    out = tmp_path / "out"
    res = cli(
        "parse",
        clips["short"],
        clips["silent"],
        "--zero-shot",
        "--classes",
        "dog",
        *_teachers(models),
        "--out",
        out,
    )
    assert res.code == 1
    errors = [line for line in res.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "short.mp4" in errors[0] and "RuntimeError" in errors[0]
    assert (out / "silent.json").is_file() and not (out / "short.json").exists()


def test_damaged_later_window_keeps_the_windows_that_decoded(models, clips, monkeypatch) -> None:
    from avparse.features.extract import FeatureExtractor
    from avparse.media import VideoDecodeError
    from avparse.parsing.api import Parser

    real = FeatureExtractor.window

    def damaged(self, path, window):
        if window == 2:
            raise VideoDecodeError(f"{path}: no decodable video frames in window 2")
        return real(self, path, window)

    monkeypatch.setattr(FeatureExtractor, "window", damaged)
    parser = Parser(vocab="llp", clip_model=models["clip"], clap_model=models["clap"])
    result = parser.parse(clips["long"])
    assert result.windows == 2 and result.segments[-1][1] == pytest.approx(20.0)
    assert result.duration == pytest.approx(25.0, abs=0.2)  # the file's, not what was parsed
    assert any("parsed up to 20 s only" in n for n in result.notes)


def test_parse_many_skips_records_and_finishes(models, clips, tmp_path) -> None:
    import avparse

    out = tmp_path / "out"
    seen = []
    videos = [clips["short"], clips["corrupt"], tmp_path / "missing.mp4", clips["silent"]]
    options = {"classes": ["dog"], "clip_model": models["clip"], "clap_model": models["clap"]}
    report = avparse.parse_many(
        videos, out, show_progress=False, on_video=lambda v: seen.append(v.status), **options
    )
    assert [v.status for v in report.videos] == ["parsed", "failed", "failed", "parsed"]
    assert seen == ["parsed", "failed", "failed", "parsed"]
    assert report.exit_status == 1 and len(report.failed) == 2
    assert str(clips["corrupt"]) in (report.failed[0].error or "")
    assert (out / "short.json").is_file() and (out / "silent.tsv").is_file()
    again = avparse.parse_many(videos[:1] + videos[3:], out, show_progress=False, **options)
    assert [v.status for v in again.videos] == ["skipped", "skipped"] and again.exit_status == 0


def test_parse_progress_flags_and_bad_outputs(cli, models, clips, tmp_path) -> None:
    zs = ["--zero-shot", "--classes", "dog", *_teachers(models)]
    out = tmp_path / "out"
    res = cli("parse", clips["short"], *zs, "--out", out, "--no-progress", "--quiet")
    assert res.code == 0, res.err  # 0.1 printed the top-level usage for --no-progress
    assert res.out == "" and (out / "short.json").is_file()
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for bad in (a_file, a_file / "sub"):  # an existing file; a folder that cannot be created
        res = cli("parse", clips["short"], *zs, "--out", bad, "--no-progress")
        assert res.code == 2, res.err
        assert res.err.count("\n") == 1 and str(bad) in res.err and "Traceback" not in res.err
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    res = cli("parse", empty, *zs, "--out", out, "--no-progress")
    assert res.code == 1
    assert "empty file (0 bytes)" in res.err and "Errno" not in res.err


def test_open_errors_have_no_raw_errno(tmp_path) -> None:
    from avparse.parsing.api import video_duration

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(AvparseError) as err:
        video_duration(junk)
    assert "Errno" not in str(err.value) and str(junk) in str(err.value)


def test_published_pt_parses_and_converts_to_the_same_outputs(cli, clips, tmp_path) -> None:
    """A VALOR++-preset state dict (the published checkpoint_best.pt format) parses through
    ``--model X.pt --preset valor++``; ``avparse convert`` makes a folder that parses the same."""
    from avparse.features.r2plus1d import R2Plus1D18
    from avparse.model.config import model_config
    from avparse.model.han import HAN
    from avparse.teachers.tiny import save_tiny_teachers

    clip_dir, clap_dir = save_tiny_teachers(tmp_path / "teachers", student_shapes=True)
    torch.manual_seed(3)
    model = HAN(model_config("valor++"))
    with torch.no_grad():
        model.fc_prob.bias.add_(3.0)  # some events to compare
    pt = tmp_path / "checkpoint_best.pt"
    torch.save(model.state_dict(), pt)
    r21d = tmp_path / "r21d.pth"
    torch.manual_seed(4)
    torch.save(R2Plus1D18().state_dict(), r21d)
    common = ["--clip-model", clip_dir, "--clap-model", clap_dir, "--r2plus1d", r21d, *FAST]
    res = cli("parse", clips["short"], "--model", pt, "--out", tmp_path / "a", *common)
    assert res.code == 2 and "pass --preset" in res.err
    res = cli("parse", clips["short"], "--model", pt, "--preset", "valor++",
              "--out", tmp_path / "a", *common)  # fmt: skip
    assert res.code == 0, res.err
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({f"{lvl}_{m}": 50.0 for lvl in ("seg", "evt")
                                   for m in ("a", "v", "av", "type", "event")}))  # fmt: skip
    folder = tmp_path / "valorpp"
    res = cli("convert", pt, "--preset", "valor++", "--out", folder, "--metrics", metrics,
              "--metrics-note", "made-up numbers for a test")  # fmt: skip
    assert res.code == 0, res.err
    card = (folder / "README.md").read_text()
    assert "library_name: avparse" in card and "`valor++`" in card and "`clap`" in card
    assert "`Speech`" in card and "checkpoint_best.pt" in card and "Type@AV" in card
    res = cli("convert", pt, "--preset", "valor++", "--out", folder)
    assert res.code == 2 and "--overwrite" in res.err
    res = cli("parse", clips["short"], "--model", folder, "--out", tmp_path / "b", *common)
    assert res.code == 0, res.err
    a = json.loads((tmp_path / "a" / "short.json").read_text())
    b = json.loads((tmp_path / "b" / "short.json").read_text())
    assert a["events"] and a["events"] == b["events"]
    res = cli("parse", clips["short"], "--model", folder, "--preset", "valor++",
              "--out", tmp_path / "c", *common)  # fmt: skip
    assert res.code == 2 and "brings its own config" in res.err


@pytest.mark.parametrize(
    "flags", [["--snippet-fps", "1e308"], ["--snippet-fps", "nan"], ["--snippet-size", "0"]]
)
def test_snippet_settings_are_checked_before_any_model(cli, tmp_path, flags) -> None:
    res = cli("parse", tmp_path / "v.mp4", "--zero-shot", "--classes", "dog", *flags,
              "--out", tmp_path / "out")  # fmt: skip
    assert res.code == 2 and res.err.count("\n") == 1 and flags[0] in res.err
    assert len(res.err) < 200  # 1e308 is not spelled out in 309 digits


def test_an_output_counts_only_for_the_video_it_records(cli, models, clips, tmp_path) -> None:
    """Issue 20 item 2: ``z/clip.mp4`` is never skipped because ``x/clip.mp4`` was parsed into
    ``clip.json``; it gets the next free name. A finished output is skipped only for the very
    file it records; a changed file is parsed again under its own name."""
    import shutil

    import avparse

    named = {}
    for folder in ("x", "y", "z"):
        (tmp_path / folder).mkdir()
        named[folder] = shutil.copy(clips["short"], tmp_path / folder / "clip.mp4")
    out = tmp_path / "out"
    zs = ["--zero-shot", "--classes", "dog", *_teachers(models), "--no-progress"]
    first = cli("parse", named["x"], named["y"], *zs, "--out", out)
    assert first.code == 0, first.err
    assert json.loads((out / "clip.json").read_text())["source"]["path"] == str(
        Path(named["x"]).resolve()
    )
    later = cli("parse", named["z"], *zs, "--out", out)
    assert later.code == 0, later.err
    assert "skipped" not in later.out and "clip-3.json" in later.out
    record = json.loads((out / "clip-3.json").read_text())["source"]
    assert record["path"] == str(Path(named["z"]).resolve())
    options = {"classes": ["dog"], "clip_model": models["clip"], "clap_model": models["clap"]}
    again = avparse.parse_many(
        [named["z"], named["y"], named["x"], named["x"]], out, show_progress=False, **options
    )
    assert [(v.status, v.stem) for v in again.videos] == [
        ("skipped", "clip-3"), ("skipped", "clip-2"), ("skipped", "clip"), ("skipped", "clip"),
    ]  # fmt: skip
    stamp = (out / "clip-2.json").stat().st_mtime_ns
    Path(named["y"]).write_bytes(Path(clips["long"]).read_bytes())  # y changes
    changed = avparse.parse_many([named["y"]], out, show_progress=False, **options)
    assert [(v.status, v.stem) for v in changed.videos] == [("parsed", "clip-2")]
    assert "changed since" in changed.videos[0].notes[0]
    assert (out / "clip-2.json").stat().st_mtime_ns != stamp
    assert json.loads((out / "clip-2.json").read_text())["windows"] == 3


def test_results_rows_say_what_the_folder_holds(models, clips, tmp_path) -> None:
    """A failed row is a failure of the latest run (an input removed or now matching files
    leaves none behind); a parsed row whose JSON is gone is dropped; a quoted pattern that
    matches nothing says so, and alone is refused before any model loads."""
    import avparse

    out = tmp_path / "out"
    pattern = str(tmp_path / "later" / "*.mp4")
    options = {"classes": ["dog"], "clip_model": models["clip"], "clap_model": models["clap"]}

    def rows() -> dict[str, str]:
        lines = (out / "results.jsonl").read_text().splitlines()
        return {json.loads(r)["video"]: json.loads(r)["status"] for r in lines}

    with pytest.raises(AvparseError, match=r"later/\*\.mp4: no file matches this pattern"):
        avparse.parse_many([pattern], out, show_progress=False, **options)
    first = avparse.parse_many(
        [clips["short"], tmp_path / "missing.mp4", pattern], out, show_progress=False, **options
    )
    assert [v.status for v in first.videos] == ["parsed", "failed", "failed"]
    assert first.videos[2].error == f"{pattern}: no file matches this pattern"
    assert set(rows().values()) == {"parsed", "failed"} and len(rows()) == 3
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "clip.mp4").write_bytes(clips["silent"].read_bytes())
    again = avparse.parse_many([clips["short"], pattern], out, show_progress=False, **options)
    assert [v.status for v in again.videos] == ["skipped", "parsed"]
    assert rows() == {str(clips["short"]): "parsed", str(tmp_path / "later" / "clip.mp4"): "parsed"}
    (out / "clip.json").unlink()
    avparse.parse_many([clips["short"]], out, show_progress=False, **options)
    assert rows() == {str(clips["short"]): "parsed"}


def test_an_output_of_other_settings_is_never_skipped_into(cli, models, clips, tmp_path) -> None:
    """A folder's finished outputs count as done only for the settings that made them: other
    classes, models or --precision are refused in one line before any model loads (as harvest
    refuses a root of another precision); --overwrite parses again; the JSON records them."""
    out = tmp_path / "out"
    base = [clips["short"], "--zero-shot", *_teachers(models), "--out", out, "--no-progress"]
    first = cli("parse", *base, "--classes", "dog")
    assert first.code == 0, first.err
    assert json.loads((out / "short.json").read_text())["precision"] == "float32"
    same = cli("parse", *base, "--classes", "dog")
    assert same.code == 0 and "skipped" in same.out
    spelled = [clips["short"], "--zero-shot", "--clip-model", f"{models['clip']}/.",
               "--clap-model", str(models["clap"]), "--out", out, "--no-progress"]  # fmt: skip
    same = cli("parse", *spelled, "--classes", "dog")  # the same model folder, spelled otherwise
    assert same.code == 0 and "skipped" in same.out, same.err
    for flags, what in (
        (["--classes", "cat"], "classes ['dog'], this run ['cat']"),
        (
            ["--classes", "dog", "--precision", "bfloat16"],
            "precision 'float32', this run 'bfloat16'",
        ),
    ):
        other = cli("parse", *base, *flags)
        assert other.code == 2 and other.err.count("\n") == 1, other.err
        assert f"{out / 'short'}.json: parsed with other settings ({what})" in other.err
        assert "--overwrite" in other.err
    again = cli("parse", *base, "--classes", "cat", "--overwrite")
    assert again.code == 0 and "skipped" not in again.out
    assert json.loads((out / "short.json").read_text())["classes"] == ["cat"]
