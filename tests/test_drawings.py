"""evaluate_drawings: a folder of drawings is read as the app reads a canvas; bad files are reported, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.drawings import evaluate_drawings, format_drawings_report, read_drawing_file
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
    assert result["per_class"]["2"]["n"] == 5 and result["per_class"]["4"] == {"n": 0, "accuracy": None}
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
