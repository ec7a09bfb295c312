"""evaluate_drawings: a folder of drawings is read as the app reads a canvas; bad files are reported, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.drawings import evaluate_drawings, format_drawings_report, read_drawing_file
from mnist_demo.reject import Decline
from testkit.sketches import CLEAR, WHITE, draw

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cnn.safetensors"


@pytest.fixture(scope="module")
def cnn():
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    return load_checkpoint(WEIGHTS).model


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Drawings as a sketchpad or a person would save them, plus files that cannot be used."""
    for digit in "2", "3", "7":
        (tmp_path / digit).mkdir()
        draw(digit).save(tmp_path / digit / "sketchpad.png")  # RGBA, black on white, 280 x 280
        draw(digit, size=(800, 800), brush=50, ink=WHITE, paper=CLEAR).save(tmp_path / digit / "layer.png")
        draw(digit, size=(400, 300), mode="RGB").save(tmp_path / digit / "photo.jpg", quality=85)
        draw(digit, size=(120, 120), brush=9, mode="L").save(tmp_path / digit / "small.webp")
    draw("7").save(tmp_path / "2" / "mislabelled.png")  # a 7 filed as a 2
    (tmp_path / "4").mkdir()  # a digit with nothing usable
    (tmp_path / "4" / "empty.png").write_bytes(b"")
    (tmp_path / "4" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "4" / "notes.txt").write_text("a 4 drawn on paper, lost\n")
    Image.new("RGB", (280, 280), "white").save(tmp_path / "4" / "blank.png")
    Image.new("L", (10, 10)).save(tmp_path / "4" / "tiny.png")
    (tmp_path / "4" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: skipped, not reported
    (tmp_path / "not-a-digit").mkdir()  # ignored
    return tmp_path


def test_report_counts_and_confusions(folder, cnn):
    result = evaluate_drawings(cnn, folder)
    json.dumps(result)  # JSON-able as it is
    assert result["n"] == 13
    assert result["per_class"]["2"]["n"] == 5 and result["per_class"]["4"] == {
        "n": 0,
        "accuracy": None,
        "declined": None,
    }
    assert sum(c["n"] for c in result["per_class"].values()) == result["n"]
    confusion = np.array(result["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 13
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 13)
    assert confusion[2, 7] >= 1  # the mislabelled 7 is read as what it is
    assert {"path": str(folder / "2" / "mislabelled.png"), "digit": 2, "read_as": 7} in result["wrong"]
    assert result["accuracy"] >= 11 / 13  # the shipped model reads these plain drawings


def test_unusable_files_are_reported_not_fatal(folder, cnn):
    reasons = {Path(u["path"]).name: u["reason"] for u in evaluate_drawings(cnn, folder)["unreadable"]}
    assert set(reasons) == {"empty.png", "broken.png", "notes.txt", "blank.png", "tiny.png"}
    assert reasons["empty.png"] == "empty file"
    assert reasons["notes.txt"] == "not an image file"
    assert "blank" in reasons["blank.png"]
    assert "28" in reasons["tiny.png"]  # the canvas-size rule, as the app would say it


def test_text_report_for_people(folder, cnn):
    text = format_drawings_report(evaluate_drawings(cnn, folder))
    assert "read correctly" in text and "of 13)" in text
    assert "true\\pred" in text  # the confusion matrix
    assert "mislabelled.png: a 2 read as 7" in text
    assert "notes.txt: not an image file" in text


def test_each_file_is_read_as_the_app_reads_it(folder):
    from mnist_demo.preprocess import sketch_to_tensor

    path = folder / "3" / "layer.png"
    with Image.open(path) as image:
        expected = sketch_to_tensor(np.asarray(image))
    assert np.array_equal(read_drawing_file(path).image, expected.image)


def test_bad_folders_are_clear_errors(tmp_path, cnn):
    with pytest.raises(FileNotFoundError, match="no folder"):
        evaluate_drawings(cnn, tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        evaluate_drawings(cnn, tmp_path / "file.png")
    with pytest.raises(FileNotFoundError, match="0 .. 9"):
        evaluate_drawings(cnn, tmp_path)


def test_command_line(folder, capsys):
    from mnist_demo.evaluate import main

    assert main([str(WEIGHTS), "--drawings", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 13 and len(result["unreadable"]) == 5


class Constant(torch.nn.Module):
    """A 'model' whose logits are fixed: probabilities 0.91 for `digit` and 0.01 each for the rest, or all equal."""

    def __init__(self, digit: int | None):
        super().__init__()
        p = (
            torch.full((10,), 0.1)
            if digit is None
            else torch.full((10,), 0.01).index_fill(0, torch.tensor(digit), 0.91)
        )
        self.register_buffer("logits", p.log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), 10)


@pytest.fixture
def with_none(tmp_path: Path) -> Path:
    """Two 7s and three non-digits in `none`."""
    for name in "7", "none":
        (tmp_path / name).mkdir()
    draw("7").save(tmp_path / "7" / "a.png")
    draw("7", size=(400, 400)).save(tmp_path / "7" / "b.png")
    for i, text in enumerate(["0", "00", "8"]):  # any ink will do: the constant models never look at it
        draw(text).save(tmp_path / "none" / f"{i}.png")
    return tmp_path


def test_none_folder_reports_declined_shares_and_keeps_accuracy_for_digits(with_none):
    sure = evaluate_drawings(Constant(7), with_none, Decline(0.5))  # 0.91 >= 0.5: nothing declined
    assert sure["n"] == 2 and sure["accuracy"] == 1.0 and sure["declined"] == 0.0
    assert sure["per_class"]["none"] == {"n": 3, "declined": 0.0}
    assert sure["per_class"]["7"]["declined"] == 0.0 and sure["per_class"]["3"]["declined"] is None
    assert sum(c["n"] for d, c in sure["per_class"].items() if d != "none") == sure["n"]
    assert len(sure["not_declined"]) == 3 and {w["read_as"] for w in sure["not_declined"]} == {7}

    doubtful = evaluate_drawings(Constant(None), with_none, Decline(0.5))  # 0.1 < 0.5: all declined
    assert doubtful["declined"] == 1.0 and doubtful["per_class"]["none"] == {"n": 3, "declined": 1.0}
    assert doubtful["accuracy"] == 0.0  # argmax of equal logits is 0: read wrong, declined or not
    assert doubtful["not_declined"] == []

    unset = evaluate_drawings(Constant(None), with_none)  # no threshold: nothing is declined
    assert unset["declined"] == 0.0 and unset["per_class"]["none"]["declined"] == 0.0
    assert "declined as not a digit" in format_drawings_report(doubtful)
    assert "declined as not a digit" not in format_drawings_report(unset)


def test_a_folder_of_non_digits_alone_is_enough(tmp_path):
    (tmp_path / "none").mkdir()
    draw("4").save(tmp_path / "none" / "x.png")
    result = evaluate_drawings(Constant(3), tmp_path, Decline(0.95))
    assert result["n"] == 0 and result["accuracy"] is None and result["declined"] is None
    assert result["per_class"]["none"] == {"n": 1, "declined": 1.0}


def test_command_line_uses_the_checkpoints_threshold(with_none, tmp_path, capsys):
    from mnist_demo.checkpoint import save_checkpoint
    from mnist_demo.evaluate import main

    checkpoint = load_checkpoint(WEIGHTS)
    path = save_checkpoint(
        tmp_path / "strict.safetensors",
        checkpoint.model,
        **{**checkpoint.metadata, "decline_below": 0.999999, "decline_score": "probability"},
    )
    assert main([str(path), "--drawings", str(with_none), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decline_below"] == 0.999999 and result["decline_score"] == "probability"
    assert result["per_class"]["none"]["declined"] == 1.0
