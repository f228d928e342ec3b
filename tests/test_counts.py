"""Counts in printed lines agree with their noun: ``1 problem``, ``1 class uses``, ``1 layer``
(every such line goes through :func:`avparse.utils.text.count`)."""

from __future__ import annotations

import json
from pathlib import Path

from avparse.utils.text import count


def test_count_helper() -> None:
    assert [count(n, "clip") for n in (0, 1, 2)] == ["0 clips", "1 clip", "2 clips"]
    assert count(1, "class uses", "classes use") == "1 class uses"
    assert count(3, "class uses", "classes use") == "3 classes use"


def test_data_check_says_one_problem_and_one_tag(tmp_path: Path) -> None:
    """A root with one missing file, one weak tag without a dense event and one dense row of a
    clip outside val/test: every line in the singular."""
    from avparse.data.check import check_root, format_report
    from avparse.synthetic import generate_llp

    root = generate_llp(tmp_path / "root", n_train=4, n_val=2, n_test=2, seed=3)
    test_csv = root / "AVVP_test_pd.csv"
    head, first, *rest = test_csv.read_text().splitlines()
    name, tags = first.split("\t")
    extra = next(c for c in ("Dog", "Cat", "Chainsaw") if c not in tags.split(","))
    test_csv.write_text("\n".join([head, f"{name}\t{tags},{extra}", *rest]) + "\n")
    train_clip = (root / "AVVP_train.csv").read_text().splitlines()[1].split("\t")[0]
    with (root / "AVVP_eval_audio.csv").open("a") as f:
        f.write(f"{train_clip}\t0\t1\tSpeech\n")
    motion = sorted((root / "feats" / "r2plus1d_18").iterdir())[0]
    motion.unlink()

    report = check_root(root)
    notes = "\n".join(report.notes)
    assert "AVVP_eval_audio.csv: 1 clip is in neither val nor test" in notes, notes
    assert "1 weak tag has no dense event" in notes, notes
    text = format_report(report)
    assert "\n1 problem:\n" in text, text
    assert "harvest positives, none outside the weak labels" in text


def test_zero_shot_notes_count_the_classes() -> None:
    from avparse.parsing.zeroshot import zero_shot_vocabulary

    _, notes = zero_shot_vocabulary(classes="dog")
    assert notes[0].startswith("1 class uses the default visual threshold 15 "), notes
    assert notes[1].startswith("1 class uses the default audio threshold 2 "), notes
    _, notes = zero_shot_vocabulary(classes="dog, cat")
    assert notes[0].startswith("2 classes use the default visual threshold"), notes


def test_model_card_of_one_layer() -> None:
    from avparse.model.card import model_card
    from avparse.model.config import model_config

    card = model_card(model_config("tiny", {"num_layers": 1, "nhead": 1}), source="test")
    assert "1 layer, 1 head," in card, card


def test_unav_check_counts_problems(tmp_path: Path) -> None:
    from avparse.data.unav_check import check_unav_root
    from avparse.synthetic.unav import generate_unav

    root = generate_unav(tmp_path / "root", n_train=2, n_val=1, n_test=1, seed=1)
    ann = root / "unav100_annotations.json"
    data = json.loads(ann.read_text())
    video = next(iter(data["database"]))
    data["database"][video]["duration"] = -1
    ann.write_text(json.dumps(data))
    report = check_unav_root(root)
    assert report.annotations["unav100_annotations.json"] == "1 problem (listed below)"
