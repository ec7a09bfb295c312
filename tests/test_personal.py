"""The personal set: labels, cap, accuracy, and zip export and import, including hostile archives."""

from __future__ import annotations

import io
import json
import re
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mnist_demo import personal
from mnist_demo.drawings import evaluate_drawings, evaluate_strokes, read_strokes_line
from mnist_demo.personal import DRAWING_SIDE, MAX_MEMBER_BYTES, MAX_MEMBERS, PersonalSet
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.strokes import BRUSH, strokes_to_sketch
from testkit.browser import digit as place_strokes
from testkit.sketches import draw as draw_text
from testkit.sketches import sketchpad
from testkit.styles import UNUSUAL, Style, draw, variations

BLANK = np.full((280, 280), 255, np.uint8)


class Always(nn.Module):
    """A stand-in model that reads every image as `digit`."""

    def __init__(self, digit: int):
        super().__init__()
        self.digit = digit

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, 10)
        return nn.functional.one_hot(torch.full((len(x),), self.digit), 10).float()


def seven(seed: int = 0) -> np.ndarray:
    return draw(UNUSUAL["crossed 7"][1], variations(1, seed)[0])


def small_set() -> PersonalSet:
    """Nine drawings in three input forms: a Sketchpad dict, an RGB array off-centre, an unusual digit."""
    mine = PersonalSet()
    for digit in "0369":
        mine.add(sketchpad(draw_text(digit, height=0.35, at=(0.3, 0.6))), digit)
        mine.add(np.asarray(draw_text(digit, size=(600, 400), brush=6, mode="RGB")), int(digit))
    mine.add(seven(), 7)
    return mine


@pytest.mark.parametrize("label", [-1, 10, 3.0, True, "x", "12", None, [7]])
def test_add_refuses_bad_labels(label):
    mine = PersonalSet()
    with pytest.raises(ValueError, match="label"):
        mine.add(seven(), label)
    assert len(mine) == 0


@pytest.mark.parametrize("label, expected", [("7", 7), (" 3 ", 3), (np.int64(0), 0), (9, 9)])
def test_add_accepts_digits_as_dropdowns_send_them(label, expected):
    mine = PersonalSet()
    assert mine.add(seven(), label).label == expected


def test_add_keeps_what_the_network_sees_and_a_small_drawing():
    canvas = seven()
    entry = PersonalSet().add(canvas, 7)
    assert np.array_equal(entry.image, sketch_to_tensor(canvas).image)
    assert entry.image.shape == (28, 28) and entry.image.dtype == np.uint8
    assert entry.drawing.dtype == np.uint8 and entry.drawing.ndim == 2 and max(entry.drawing.shape) <= DRAWING_SIDE
    assert entry.drawing[0].min() == 255 and entry.drawing.min() < 30  # dark ink on white paper


def test_add_refuses_an_empty_canvas():
    mine = PersonalSet()
    with pytest.raises(ValueError, match="empty"):
        mine.add(BLANK, 3)
    assert len(mine) == 0


def test_remove_by_index():
    mine = PersonalSet()
    for label in (1, 2, 3):
        mine.add(seven(label), label)
    assert mine.remove(1).label == 2
    assert [e.label for e in mine.entries] == [1, 3]
    for bad in (2, -1, "0", True):
        with pytest.raises(IndexError):
            mine.remove(bad)
    assert len(mine) == 2


def test_cap_refuses_more_and_import_skips_them(monkeypatch):
    monkeypatch.setattr(personal, "MAX_DRAWINGS", 3)
    mine = PersonalSet()
    for i in range(3):
        mine.add(seven(i), 7)
    with pytest.raises(ValueError, match="full"):
        mine.add(seven(9), 7)
    assert len(mine) == 3
    half = PersonalSet(mine.entries[:2])
    report = half.import_zip(mine.export_zip())
    assert report.added == 1 and len(half) == 3
    assert [why for _, why in report.skipped] == ["set full (3 drawings)"] * 2


def test_split_and_predictions():
    mine = small_set()
    split = mine.as_split()
    assert split.images.shape == (9, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.tolist() == [0, 0, 3, 3, 6, 6, 9, 9, 7] and split.labels.dtype == torch.int64
    assert mine.predictions(Always(6)) == [6] * 9
    empty = PersonalSet()
    assert empty.predictions(Always(3)) == [] and empty.as_split().images.shape == (0, 28, 28)


def test_gallery_says_what_the_model_reads():
    mine = PersonalSet()
    mine.add(seven(), 7)
    mine.add(seven(1), 1)
    captions = [caption for _, caption in mine.gallery(Always(7))]
    assert captions == ["7 ✓", "1, read as 7"]
    picture, caption = mine.gallery()[1]
    assert caption == "1" and picture is mine.entries[1].drawing


def test_export_import_round_trip(tmp_path):
    mine = small_set()
    for digit, strokes in list(UNUSUAL.values())[:4]:
        mine.add(draw(strokes, Style(height=0.5, slant=0.2, brush=14)), digit)
    data = mine.export_zip()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert all(re.fullmatch(r"[0-9]/\d{3}\.png", n) for n in names) and len(names) == len(mine)

    path = tmp_path / "mine.zip"
    path.write_bytes(data)
    for source in (data, path, str(path)):
        back = PersonalSet()
        report = back.import_zip(source)
        assert report.added == len(mine) and report.skipped == []
        assert [e.label for e in back.entries] == [e.label for e in mine.entries]
        for before, after in zip(mine.entries, back.entries):
            # Re-reading the saved drawing redraws its strokes at another scale: as close as the same
            # drawing made at another size (the preprocessing tests' tolerance), not bit-identical.
            a, b = before.image / 255.0, after.image / 255.0
            assert np.abs(a - b).mean() < 0.03 and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_export_is_a_folder_that_evaluate_drawings_reads(tmp_path):
    mine = small_set()
    zipfile.ZipFile(io.BytesIO(mine.export_zip())).extractall(tmp_path)
    report = evaluate_drawings(Always(3), tmp_path)
    assert report["n"] == len(mine) and report["unreadable"] == []
    assert report["accuracy"] == pytest.approx(2 / 9)  # the two 3s of small_set()


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none: the header is all a bomb needs."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _patch_central(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Rewrite a field of the first central-directory record (offsets from APPNOTE 4.3.12)."""
    at = data.index(b"PK\x01\x02") + offset
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt) :]


def test_import_skips_bad_paths_and_files_with_reasons():
    good = _png(seven())
    data_at = good.index(b"IDAT") + 20
    corrupt = good[:data_at] + b"\xff" * 40 + good[data_at + 40 :]  # garbage inside the compressed pixels
    archive = _zip(
        {
            "7/good.png": good,
            "drawings/7/also-good.png": _png(seven(1)),  # the zip of a folder DIR holding 0..9
            "7/same-again.png": good,  # the same drawing twice is one drawing
            "../../7/evil.png": good,
            "/7/abs.png": good,
            "7/../../evil.png": good,
            "C:/7/drive.png": good,
            "a/b/7/deep.png": good,
            "loose.png": good,
            "11/x.png": good,
            "seven/x.png": good,
            "__MACOSX/7/._good.png": b"\x00\x05\x16\x07",
            "7/.hidden.png": good,
            "3/notes.txt": b"not an image at all",
            "3/empty.png": b"",
            "3/corrupt.png": corrupt,
            "3/truncated.png": good[: len(good) // 2],
            "3/huge.png": _png_header_only(30_000, 30_000),
            "3/blank.png": _png(BLANK),
            "3/tiny.png": _png(np.zeros((8, 8), np.uint8)),
        }
    )
    mine = PersonalSet()
    report = mine.import_zip(archive)
    assert report.added == 2 and [e.label for e in mine.entries] == [7, 7]
    why = dict(report.skipped)
    assert why["7/same-again.png"] == "already in your drawings"
    assert {why[n] for n in ("../../7/evil.png", "/7/abs.png", "7/../../evil.png", "C:/7/drive.png")} == {
        "path outside the archive"
    }
    assert {why[n] for n in ("a/b/7/deep.png", "loose.png", "11/x.png", "seven/x.png")} == {"not in a folder 0-9"}
    assert why["__MACOSX/7/._good.png"] == why["7/.hidden.png"] == "hidden or system file"
    assert why["3/notes.txt"] == why["3/empty.png"] == "not an image"
    assert why["3/corrupt.png"] == why["3/truncated.png"] == "damaged image"
    assert why["3/huge.png"] == "image too large" and why["3/blank.png"] == "blank image"
    assert why["3/tiny.png"].startswith("unusable image")
    assert len(report.skipped) == 18
    assert "added 2 drawings; skipped 18: " in report.summary() and "2 not an image" in report.summary()


def test_import_refuses_unusable_archives_whole():
    good = _png(seven())
    hostile = {
        "not a zip": b"hello, I am a text file",
        "too many members": _zip({f"7/{i}.png": b"" for i in range(MAX_MEMBERS + 1)}),
        # 3 GB declared in the directory: refused before anything is decompressed
        "huge declared size": _patch_central(_zip({"7/a.png": good}), 24, "<I", 3 * 2**30),
        # the end record says the directory is 100 MB: refused before zipfile parses it
        "huge directory": (lambda z: z[:-10] + struct.pack("<I", 100 * 2**20) + z[-6:])(_zip({"7/a.png": good})),
    }
    for name, data in hostile.items():
        mine = PersonalSet()
        with pytest.raises(ValueError):
            mine.import_zip(data)
        assert len(mine) == 0, name


def test_import_refuses_a_huge_directory_before_parsing_it():
    archive = _zip({f"7/{i}.png": b"" for i in range(20 * MAX_MEMBERS)})  # 1 MB of directory records
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="directory"):
            PersonalSet().import_zip(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"refusing took {peak / 2**20:.0f} MB: the directory was parsed"


def test_import_reads_bombs_and_liars_with_bounded_memory():
    bomb = b"\x00" * (MAX_MEMBER_BYTES * 8)  # 32 MB of zeros deflate to 32 kB
    archive = _zip({"7/bomb.png": bomb, "7/good.png": _png(seven())}, zipfile.ZIP_DEFLATED)
    # A liar: the same bomb, its directory claiming 1 kB. zipfile stops at the claim (and the CRC fails).
    liar = _patch_central(_zip({"7/liar.png": bomb}, zipfile.ZIP_DEFLATED), 24, "<I", 1024)
    encrypted = _patch_central(_zip({"7/secret.png": _png(seven())}), 8, "<H", 0x1)  # flag bit 0: encrypted
    bzip2 = _zip({"7/packed.png": _png(seven())}, zipfile.ZIP_BZIP2)
    tracemalloc.start()
    try:
        reports = [PersonalSet().import_zip(data) for data in (archive, liar, encrypted, bzip2)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, f"import peaked at {peak / 2**20:.0f} MB"
    assert reports[0].added == 1 and reports[0].skipped == [("7/bomb.png", "file too large")]
    assert reports[1].added == 0 and reports[1].skipped[0][1] in (
        "damaged, encrypted or unsupported zip entry",
        "damaged image",
        "not an image",
    )
    assert reports[2].skipped == [("7/secret.png", "damaged, encrypted or unsupported zip entry")]
    assert reports[3].skipped == [("7/packed.png", "unsupported compression")]


# --------------------------------------------------------------------------------------------------
# Drawings kept as strokes


def strokes_of(text: str, **style) -> list:
    return place_strokes(text, **style)


def stroke_set() -> PersonalSet:
    """Three drawings made on the stroke pad, and one from an image (no strokes)."""
    mine = PersonalSet()
    for text, style in (("4", {}), ("0", {"height": 90, "centre": (90, 100)}), ("7", {"slant": 0.2})):
        mine.add_strokes(strokes_of(text, **style), text)
    mine.add(seven(), 1)
    return mine


def test_add_strokes_keeps_the_strokes_the_input_and_a_picture_of_them():
    strokes = strokes_of("7", height=150, slant=0.1)
    entry = PersonalSet().add_strokes(strokes, "7")
    assert np.array_equal(entry.image, strokes_to_sketch(strokes).image) and entry.brush == BRUSH
    assert all(np.allclose(kept, line, atol=1e-4) for kept, line in zip(entry.strokes, strokes, strict=True))
    assert entry.strokes[0].dtype == np.float32 and entry.strokes[0].shape == (len(strokes[0]), 2)
    assert entry.drawing.ndim == 2 and max(entry.drawing.shape) <= DRAWING_SIDE
    assert entry.drawing[0].min() == 255 and entry.drawing.min() < 30  # dark ink on white paper
    # The picture is the same drawing: read back as an image, it gives (nearly) the same input.
    a, b = entry.image / 255.0, sketch_to_tensor(entry.drawing).image / 255.0
    assert np.abs(a - b).mean() < 0.03 and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


@pytest.mark.parametrize(
    "strokes, label, message",
    [
        ([], 7, "empty"),
        ([[[140, 140]]], 7, "no digit"),  # a dot
        ([[[1, float("nan")]]], 7, "not a finite number"),
        ([[["a", 1]]], 7, "must be a number"),
        (None, 7, "must be a list"),
        ([[[100, 100], [100, 200]]], 12, "label"),
    ],
)
def test_add_strokes_refuses_what_is_no_digit(strokes, label, message):
    mine = PersonalSet()
    with pytest.raises(ValueError, match=message):
        mine.add_strokes(strokes, label)
    assert len(mine) == 0


def test_export_has_the_strokes_as_lines_that_evaluate_strokes_reads(tmp_path):
    mine = stroke_set()
    with zipfile.ZipFile(io.BytesIO(mine.export_zip())) as archive:
        names = archive.namelist()
        lines = archive.read(personal.STROKES_FILE).decode().splitlines()
    assert sorted(names) == ["0/001.png", "1/003.png", "4/000.png", "7/002.png", personal.STROKES_FILE]
    assert len(lines) == 3  # the drawing made from an image has no strokes
    rows = [json.loads(line) for line in lines]
    assert [(r["label"], r["png"], r["brush"]) for r in rows] == [
        ("4", "4/000.png", 20),
        ("0", "0/001.png", 20),
        ("7", "7/002.png", 20),
    ]
    for line, entry in zip(lines, mine.entries):
        digit, sketch = read_strokes_line(line.encode())  # what `evaluate --strokes` does with each line
        assert digit == entry.label and np.array_equal(sketch.image, entry.image)
    (tmp_path / "strokes.ndjson").write_text("\n".join(lines))
    assert evaluate_strokes(Always(4), tmp_path / "strokes.ndjson")["accuracy"] == pytest.approx(1 / 3)


def test_import_reads_strokes_first_and_the_same_archive_twice_adds_nothing():
    mine = stroke_set()
    data = mine.export_zip()
    back = PersonalSet()
    report = back.import_zip(data)
    assert report.added == 4 and report.skipped == []
    assert [e.label for e in back.entries] == [4, 0, 7, 1]  # the strokes, then the pictures left
    for before, after in zip(mine.entries[:3], back.entries[:3]):
        assert np.array_equal(before.image, after.image)  # from the strokes: exactly the same input
        assert all(np.array_equal(a, b) for a, b in zip(before.strokes, after.strokes, strict=True))
    assert back.entries[3].strokes is None
    again = back.import_zip(data)
    assert again.added == 0 and len(back) == 4
    assert [why for _, why in again.skipped] == ["already in your drawings"] * 4


def test_a_bad_strokes_line_falls_back_to_its_picture_and_says_why():
    mine = stroke_set()
    with zipfile.ZipFile(io.BytesIO(mine.export_zip())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    lines = members[personal.STROKES_FILE].decode().splitlines()
    broken = json.loads(lines[0])
    broken["strokes"] = [[[1, "NaN"]]]
    lines[0] = json.dumps(broken)
    lines.insert(1, "{not json")
    lines.append(json.dumps({"label": "x", "strokes": [[[1, 2], [3, 4]]]}))
    lines.append("x" * (personal.MAX_LINE_BYTES + 1))
    members[personal.STROKES_FILE] = "\n".join(lines).encode()
    members["4/000.png"] = _png(np.full((100, 100), 255, np.uint8))  # had its line been read, no matter
    back = PersonalSet()
    report = back.import_zip(_zip(members))
    reasons = dict(report.skipped)
    assert "must be a number" in reasons["strokes.ndjson:1"]
    assert reasons["strokes.ndjson:2"] == "not a JSON line"
    assert "label must be a digit" in reasons["strokes.ndjson:5"] and reasons["strokes.ndjson:6"] == "line too long"
    assert reasons["4/000.png"] == "blank image"  # its line was bad: the picture was read instead
    assert sorted(e.label for e in back.entries) == [0, 1, 7] and report.added == 3


def test_a_strokes_file_too_large_is_skipped_unread(monkeypatch):
    monkeypatch.setattr(personal, "MAX_STROKES_FILE_BYTES", 100)
    mine = stroke_set()
    back = PersonalSet()
    report = back.import_zip(mine.export_zip())
    assert report.skipped == [(personal.STROKES_FILE, "strokes file too large or compressed in an unsupported way")]
    assert report.added == 4 and all(e.strokes is None for e in back.entries)  # from the pictures
