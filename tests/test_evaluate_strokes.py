"""evaluate --strokes: a file of pen strokes, one drawing per JSON line in Quick, Draw!'s form or as point
lists, is read as the stroke pad's drawings are; the report has the keys of --drawings; bad lines are
reported, never fatal.

    python -m pytest tests/test_evaluate_strokes.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.drawings import (
    MAX_LINE_BYTES,
    evaluate_drawings,
    evaluate_strokes,
    format_drawings_report,
    read_strokes_line,
)
from mnist_demo.evaluate import main
from mnist_demo.strokes import strokes_to_sketch
from testkit.sketches import layout

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "cnn.safetensors"
RECORDED = ROOT / "tests" / "drawings" / "strokes.ndjson"


def points(digit: str, scale: float = 1.0, shift: float = 0.0) -> list:
    """testkit's `digit` as point lists, in some unit: `scale` units per canvas pixel, moved by `shift`."""
    return [[[x * scale + shift, y * scale + shift] for x, y in line] for line in layout(digit)]


def quickdraw(strokes: list) -> list:
    """Point lists -> Quick, Draw!'s [[x0, x1, ...], [y0, y1, ...]] per stroke."""
    return [[[p[0] for p in line], [p[1] for p in line]] for line in strokes]


@pytest.fixture(scope="module")
def cnn():
    assert WEIGHTS.is_file(), f"the shipped weights are missing: {WEIGHTS}"
    return load_checkpoint(WEIGHTS).model


@pytest.fixture
def pen_file(tmp_path: Path) -> Path:
    """Eight good drawings in the forms people send, then six lines that cannot be used, and a blank line."""
    lines = [
        {"word": "7", "drawing": quickdraw(points("7"))},  # Quick, Draw!'s own form, canvas pixels
        {"word": 3, "drawing": quickdraw(points("3", scale=0.9, shift=-200))},  # negative coordinates
        {"label": "2", "drawing": points("2", scale=0.01)},  # point lists, in small units
        {"label": "0", "strokes": points("0", scale=4.0, shift=1e4), "brush": 80},  # the pen's width given
        {"label": "4", "drawing": quickdraw([[[*p, 16.0 * i] for i, p in enumerate(s)] for s in points("4")])},
        {"label": "1", "strokes": points("1")},
        {"label": "8", "drawing": points("8")},
        {"label": "2", "drawing": quickdraw(points("7"))},  # a 7 filed as a 2
    ]
    text = [json.dumps(line) for line in lines] + [
        "",
        "{not json",
        json.dumps(["a list", "not an object"]),
        json.dumps({"label": "seven", "drawing": quickdraw(points("7"))}),
        json.dumps({"label": "5", "drawing": [[[1, 2], [3, float("nan")]]]}).replace("NaN", '"x"'),
        json.dumps({"label": "6", "drawing": [[[100], [100]]]}),  # a dot
        json.dumps({"label": "9"}),
    ]
    path = tmp_path / "pen.ndjson"
    path.write_text("\n".join(text) + "\n")
    return path


def test_report_has_the_keys_and_counts_of_the_drawings_report(pen_file, cnn, tmp_path):
    result = evaluate_strokes(cnn, pen_file)
    json.dumps(result)
    (tmp_path / "7").mkdir()
    assert set(result) == set(evaluate_drawings(cnn, tmp_path))  # the same keys as --drawings
    assert result["dataset"] == "strokes" and result["folder"] == str(pen_file)
    assert result["n"] == 8 and len(result["unreadable"]) == 6
    assert result["wrong"] == [{"path": f"{pen_file}:8", "digit": 2, "read_as": 7}]
    assert result["accuracy"] == pytest.approx(7 / 8)
    assert np.array(result["confusion"]).sum() == 8


def test_bad_lines_are_reported_with_their_line_number(pen_file, cnn):
    reasons = {u["path"].rsplit(":", 1)[1]: u["reason"] for u in evaluate_strokes(cnn, pen_file)["unreadable"]}
    assert sorted(reasons, key=int) == ["10", "11", "12", "13", "14", "15"]  # line 9 is blank: skipped
    assert reasons["10"].startswith("not JSON")
    assert "JSON object" in reasons["11"]
    assert "digit 0-9" in reasons["12"]
    assert "must be a number" in reasons["13"]
    assert "a dot or a blob" in reasons["14"]
    assert 'no "drawing"' in reasons["15"]


def test_each_line_is_read_as_the_pad_reads_it():
    seven = points("7")
    digit, sketch = read_strokes_line(json.dumps({"word": "7", "drawing": quickdraw(seven), "brush": 20}).encode())
    assert digit == 7 and np.array_equal(sketch.image, strokes_to_sketch(seven).image)
    _, unknown_pen = read_strokes_line(json.dumps({"word": "7", "strokes": seven}).encode())
    assert np.array_equal(unknown_pen.image, strokes_to_sketch(seven, brush=None).image)
    # Under "drawing", strokes of at most 3 points fit Quick, Draw!'s form too, and are read in it.
    _, misread = read_strokes_line(json.dumps({"word": "7", "drawing": seven}).encode())
    assert not np.array_equal(misread.image, unknown_pen.image)


def test_oversized_lines_and_files_are_refused_unread(tmp_path, cnn):
    digit, reason = read_strokes_line(b"{" + b" " * MAX_LINE_BYTES + b"}")
    assert digit is None and "MB" in reason
    with pytest.raises(ValueError, match="no strokes file"):
        evaluate_strokes(cnn, tmp_path / "missing.ndjson")


def test_text_report_for_people(pen_file, cnn):
    text = format_drawings_report(evaluate_strokes(cnn, pen_file))
    assert "read correctly (7 of 8)" in text
    assert f"{pen_file}:8: a 2 read as 7" in text
    assert f"{pen_file}:10: not JSON" in text


def test_command_line_on_the_recorded_drawings(capsys):
    assert main([str(WEIGHTS), "--strokes", str(RECORDED), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(RECORDED.read_text().splitlines()) and result["accuracy"] == 1.0
    assert main([str(WEIGHTS), "--strokes", str(RECORDED.parent / "missing.ndjson")]) == 2
    assert "no strokes file" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one evaluation at a time
        main([str(WEIGHTS), "--strokes", str(RECORDED), "--drawings", str(RECORDED.parent)])
