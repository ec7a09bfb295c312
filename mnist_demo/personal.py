"""A visitor's own labelled drawings ("Teach it your handwriting"): the set, its accuracy, zip export and import.

Each entry keeps the 28 x 28 image the network sees, the drawing itself (dark ink on white, cropped to
the ink with a margin, at most `DRAWING_SIDE` pixels a side) and, when it was drawn on the stroke pad,
its strokes, so an exported set re-imports through the same preprocessing. The zip layout is the one
`python -m mnist_demo.evaluate WEIGHTS --drawings DIR` reads: folders `0` .. `9` of image files; plus
`strokes.ndjson`, one JSON line per drawing that has strokes, the form `evaluate --strokes` reads
({"label", "brush", "strokes"}, and "png": the picture of the same drawing). An import reads a drawing
from its strokes when its line is good, and from its picture otherwise. Imports are untrusted: sizes and
counts are checked before anything is decompressed, nothing is ever written to disk, and each bad member
(or line) is skipped with a reason. Pure Python: the app keeps a `PersonalSet` in `gr.State`.

    python -m pytest tests/test_personal.py
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from mnist_demo.canvas import contrast, read_canvas
from mnist_demo.data import IMAGE_SIZE, NUM_CLASSES, Split
from mnist_demo.files import read_bounded
from mnist_demo.metrics import predict_split
from mnist_demo.preprocess import Sketch, sketch_to_tensor
from mnist_demo.strokes import BRUSH, MAX_COORD, MID_RATIO, check_strokes, strokes_from_quickdraw, strokes_to_sketch

# The set is refused new drawings at the cap (a clear ValueError) rather than silently dropping old
# ones: a visitor who labelled 200 digits should decide what goes. 200 entries are about 4 MB.
MAX_DRAWINGS = 200
DRAWING_SIDE = 140  # longest side of a kept drawing: enough for a gallery and to re-import faithfully
CROP_MARGIN = 0.25  # paper kept around the ink on each side, as a share of the ink's longest side

# Zip import limits, checked from the archive's directory before anything is decompressed.
MAX_ZIP_BYTES = 32 * 2**20  # the archive itself; an exported full set is well under 2 MB
MAX_MEMBERS = 1000  # entries in the archive, folders included
MAX_MEMBER_BYTES = 4 * 2**20  # one image file, uncompressed
MAX_TOTAL_BYTES = 64 * 2**20  # all members together, uncompressed, as their headers declare
MAX_IMAGE_PIXELS = 2048 * 2048  # width x height from the image header, checked before decoding
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 512  # the central directory: a record is 46 bytes plus its name
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # decoders we let untrusted bytes reach
# The zip format's end-of-archive records (APPNOTE 4.3.14-16), read to size the directory before parsing it.
EOCD_SIGNATURE, EOCD_SIZE, MAX_COMMENT = b"PK\x05\x06", 22, 0xFFFF
ZIP64_LOCATOR_SIGNATURE, ZIP64_LOCATOR_SIZE = b"PK\x06\x07", 20
LABEL_FOLDERS = tuple(str(d) for d in range(NUM_CLASSES))
STROKES_FILE = "strokes.ndjson"  # in an exported zip, beside the folders
MAX_STROKES_FILE_BYTES = 16 * 2**20  # 200 drawings at the point cap are ~40 MB; a real set is under 1 MB
MAX_LINE_BYTES = 2**20  # one drawing: MAX_POINTS points are ~150 kB of JSON
SUPERSAMPLE = 4  # a stroke picture is drawn this many times larger, then averaged down: smooth edges
DECIMALS = 2  # canvas pixels are exported to 0.01 px, as the pad sends them


@dataclass(frozen=True)
class Entry:
    """One labelled drawing."""

    image: np.ndarray  # (28, 28) uint8, white ink on black: what the network sees
    drawing: np.ndarray  # (s, s) uint8, dark ink on white, s <= DRAWING_SIDE: what the visitor drew, cropped
    label: int  # the digit the visitor says it is
    strokes: tuple[np.ndarray, ...] | None = None  # (n, 2) float32 (x, y) per stroke, when drawn as strokes
    brush: float | None = None  # the pen's width in the strokes' units; None: unknown (MNIST's typical width)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: how many drawings joined the set, and each skipped file with the reason."""

    added: int
    skipped: list[tuple[str, str]]  # (name in the archive, why it was skipped)

    def summary(self) -> str:
        """One line for the visitor, e.g. 'added 12 drawings; skipped 3: 2 not an image, 1 blank'."""
        text = f"added {self.added} drawing{'s' * (self.added != 1)}"
        if self.skipped:
            reasons = Counter(why for _, why in self.skipped)
            text += f"; skipped {len(self.skipped)}: " + ", ".join(f"{n} {why}" for why, n in reasons.most_common())
        return text


def check_label(label: object) -> int:
    """A digit 0-9 from an int or a one-digit string (what a dropdown sends); ValueError otherwise."""
    if isinstance(label, str) and label.strip() in LABEL_FOLDERS:
        return int(label.strip())
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < NUM_CLASSES:
        return int(label)
    raise ValueError(f"the label must be a digit from 0 to {NUM_CLASSES - 1}, got {label!r}")


def keepsake(value: object, sketch: Sketch) -> np.ndarray:
    """The drawing's ink as dark on white, a square crop around `sketch.box`: (s, s) uint8, s <= DRAWING_SIDE.

    The ink is measured as preprocessing measures it (contrast to the paper, scaled by the ink's full
    strength), so re-reading the saved picture gives the same 28 x 28 image within rounding.
    """
    canvas = read_canvas(value)
    left, top, right, bottom = sketch.box
    side = max(IMAGE_SIZE, round(max(right - left, bottom - top) * (1 + 2 * CROP_MARGIN)))
    x0, y0 = round((left + right - side) / 2), round((top + bottom - side) / 2)
    width, height = canvas.source.size
    inside = (max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side))
    ink = np.zeros((side, side), np.float32)  # paper beyond the canvas edge
    part = np.asarray(canvas.source.crop(inside))
    ink[inside[1] - y0 : inside[3] - y0, inside[0] - x0 : inside[2] - x0] = contrast(part, canvas.paper)
    ink /= canvas.full_ink
    picture = Image.fromarray(((1.0 - np.clip(ink, 0.0, 1.0)) * 255).round().astype(np.uint8))
    if side > DRAWING_SIDE:
        picture = picture.resize((DRAWING_SIDE, DRAWING_SIDE), Image.Resampling.BOX)  # area average: no aliasing
    return np.asarray(picture)


def stroke_keepsake(strokes: list, sketch: Sketch, brush: float | None = BRUSH) -> np.ndarray:
    """`keepsake` for strokes: the same square crop around `sketch.box`, drawn from the strokes themselves.

    A round pen `brush` wide (canvas units; None: MNIST's typical width for the drawing's size), drawn
    SUPERSAMPLE times larger and averaged down, so the edges are smooth as the pad shows them.
    """
    left, top, right, bottom = sketch.box
    side = max(IMAGE_SIZE, round(max(right - left, bottom - top) * (1 + 2 * CROP_MARGIN)))
    x0, y0 = (left + right - side) / 2, (top + bottom - side) / 2
    out = min(side, DRAWING_SIDE)
    scale = SUPERSAMPLE * out / side  # picture pixels per canvas unit, while drawing
    if brush is None:  # as strokes_to_sketch draws a pen of unknown width: MNIST's share of the ink box
        points = np.concatenate([np.asarray(line, np.float64)[:, :2] for line in strokes])
        extent = float((points.max(axis=0) - points.min(axis=0)).max())
        brush = MID_RATIO * extent / (1 - MID_RATIO)
    width = brush * scale
    picture = Image.new("L", (out * SUPERSAMPLE, out * SUPERSAMPLE), 255)
    pen = ImageDraw.Draw(picture)
    for line in strokes:
        points = [((p[0] - x0) * scale, (p[1] - y0) * scale) for p in line]
        if len(points) > 1:
            pen.line(points, fill=0, width=max(1, round(width)), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps (and a dot for a one-point stroke)
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)
    return np.asarray(picture.resize((out, out), Image.Resampling.BOX))


def _compact(strokes: list) -> tuple[np.ndarray, ...]:
    """Checked strokes -> (n, 2) float32 arrays: x and y only, a few bytes a point."""
    return tuple(np.asarray(line, np.float32)[:, :2] for line in strokes)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _label_folder(name: str) -> tuple[int | None, str]:
    """The label a member's path gives it, or (None, why it is ignored). Nothing is extracted, but a
    path that climbs out or hides is never trusted to mean a label."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        return None, "path outside the archive"
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None, "hidden or system file"
    if len(parts) not in (2, 3) or parts[-2] not in LABEL_FOLDERS:  # 3: the archive of a folder DIR/0/x.png
        return None, "not in a folder 0-9"
    return int(parts[-2]), ""


@dataclass
class PersonalSet:
    """One visitor's labelled drawings, oldest first, at most `MAX_DRAWINGS`."""

    entries: list[Entry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, value: object, label: object, sketch: Sketch | None = None) -> Entry:
        """Add a drawing (a Sketchpad value, array or PIL image) as `label`.

        `sketch`, when the caller already has it (the digit the model just read), saves preprocessing the
        canvas again; its box decides the crop kept. Raises ValueError for a bad label, an empty canvas,
        or a full set.
        """
        label = check_label(label)
        if len(self.entries) >= MAX_DRAWINGS:
            raise ValueError(f"your set is full ({MAX_DRAWINGS} drawings): remove some before adding more")
        sketch = sketch if sketch is not None else sketch_to_tensor(value)
        if sketch is None:
            raise ValueError("there is no drawing to add: the canvas is empty")
        entry = Entry(np.array(sketch.image, np.uint8), keepsake(value, sketch), label)
        self.entries.append(entry)
        return entry

    def add_strokes(
        self, strokes: object, label: object, sketch: Sketch | None = None, brush: float | None = BRUSH
    ) -> Entry:
        """Add a drawing made of strokes (the stroke pad's format) as `label`; it keeps the strokes too.

        `sketch`, when the caller has it already, is the digit as the network sees it; else all the strokes
        are read as one digit. Raises ValueError for a bad label, bad or empty strokes, or a full set.
        """
        label = check_label(label)
        if len(self.entries) >= MAX_DRAWINGS:
            raise ValueError(f"your set is full ({MAX_DRAWINGS} drawings): remove some before adding more")
        entry, why = _strokes_entry(strokes, label, brush, sketch)
        if entry is None:
            raise ValueError(why)
        self.entries.append(entry)
        return entry

    def remove(self, index: int) -> Entry:
        """Remove and return the entry at `index` (0 = oldest); IndexError when there is none."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < len(self.entries):
            raise IndexError(f"no drawing number {index!r}: the set holds {len(self.entries)}")
        return self.entries.pop(int(index))

    def as_split(self) -> Split:
        """The set as a `Split`: uint8 images (N, 28, 28), int64 labels (N,)."""
        images = np.zeros((len(self.entries), IMAGE_SIZE, IMAGE_SIZE), np.uint8)  # (N, 28, 28)
        for i, entry in enumerate(self.entries):
            images[i] = entry.image
        return Split(torch.from_numpy(images), torch.tensor([e.label for e in self.entries], dtype=torch.long))

    def predictions(self, model: nn.Module) -> list[int]:
        """What `model` reads each drawing as, in the set's order."""
        return predict_split(model, self.as_split()).tolist() if self.entries else []

    def gallery(
        self,
        model: nn.Module | None = None,
        predictions: list[int] | None = None,
    ) -> list[tuple[np.ndarray, str]]:
        """(drawing, caption) pairs for a gallery; with a model (or its `predictions`, when already made)
        the caption says what it reads."""
        if predictions is None and model is not None:
            predictions = self.predictions(model)
        if predictions is None:
            return [(e.drawing, str(e.label)) for e in self.entries]
        return [
            (e.drawing, f"{e.label} ✓" if p == e.label else f"{e.label}, read as {p}")
            for e, p in zip(self.entries, predictions)
        ]

    def export_zip(self) -> bytes:
        """The drawings as PNGs in folders 0-9 (`<label>/<number>.png`), for `--drawings` or re-import, and
        the strokes of those that have them as STROKES_FILE (for `--strokes`, and read first on re-import)."""
        out = io.BytesIO()
        lines = []
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for i, entry in enumerate(self.entries):
                name = f"{entry.label}/{i:03d}.png"
                archive.writestr(name, _png(entry.drawing))
                if entry.strokes is not None:
                    lines.append(_strokes_line(entry, name))
            if lines:
                archive.writestr(STROKES_FILE, "".join(lines), zipfile.ZIP_DEFLATED)  # text: deflate shrinks it
        return out.getvalue()

    def import_zip(self, source: bytes | Path | str) -> ImportReport:
        """Add the images of a zip (bytes or a path) in folders 0-9; each bad file is skipped with a reason.

        Raises ValueError, adding nothing, when the archive itself is unusable: not a zip, too big, too many
        members, or more declared uncompressed bytes than `MAX_TOTAL_BYTES`.
        """
        data = read_bounded(source, MAX_ZIP_BYTES, "drawing archive")
        _check_directory(data)
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError) as err:
            raise ValueError(f"not a readable zip file ({err})") from None
        with archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise ValueError(f"the zip holds {len(members)} entries; at most {MAX_MEMBERS} are read")
            declared = sum(m.file_size for m in members)
            if declared > MAX_TOTAL_BYTES:
                raise ValueError(f"the zip unpacks to {declared / 2**20:.0f} MB; at most {MAX_TOTAL_BYTES // 2**20} MB")
            added, skipped = [], []
            known = {_identity(e) for e in self.entries}  # an archive imported twice adds nothing the second time

            def keep(entry: Entry, name: str) -> None:
                if _identity(entry) in known:
                    skipped.append((name, "already in your drawings"))
                else:
                    known.add(_identity(entry))
                    added.append(entry)

            room = MAX_DRAWINGS - len(self.entries)
            strokes_files = [m for m in members if not m.is_dir() and _is_strokes_file(m.filename)]
            read_from_strokes = set()  # pictures whose drawing came from its strokes line
            for member in strokes_files[:1]:  # one set of strokes per archive
                for name, entry, why, png in _read_strokes_file(archive, member):
                    if entry is None:
                        skipped.append((name, why))
                    elif len(added) >= room:
                        skipped.append((name, f"set full ({MAX_DRAWINGS} drawings)"))
                    else:
                        keep(entry, name)
                        read_from_strokes.add(png)
            for member in members:
                if member.is_dir() or member in strokes_files[:1]:
                    continue
                if member.filename in read_from_strokes:
                    continue  # the same drawing, read from its strokes already
                label, why = _label_folder(member.filename)
                if label is None:
                    skipped.append((member.filename, why))
                elif len(added) >= room:
                    skipped.append((member.filename, f"set full ({MAX_DRAWINGS} drawings)"))
                elif member.file_size > MAX_MEMBER_BYTES:
                    skipped.append((member.filename, "file too large"))
                else:
                    entry, why = _read_member(archive, member, label)
                    if entry is None:
                        skipped.append((member.filename, why))
                    else:
                        keep(entry, member.filename)
        self.entries.extend(added)
        return ImportReport(len(added), skipped)


def _strokes_entry(
    strokes: object, label: int, brush: float | None, sketch: Sketch | None = None
) -> tuple[Entry | None, str]:
    """(entry, "") for a drawing of strokes, or (None, why); ValueError never escapes."""
    try:
        strokes = check_strokes(strokes)
        sketch = sketch if sketch is not None else strokes_to_sketch(strokes, brush=brush)
    except ValueError as err:
        return None, str(err)
    if sketch is None:
        return None, "there is no digit in these strokes: a dot or a blob"
    picture = stroke_keepsake(strokes, sketch, brush)
    return Entry(np.array(sketch.image, np.uint8), picture, label, _compact(strokes), brush), ""


def _strokes_line(entry: Entry, png: str) -> str:
    """An entry's JSON line in STROKES_FILE (the form `evaluate --strokes` reads), with its picture's name."""
    row = {"label": str(entry.label), "png": png}
    if entry.brush is not None:
        row["brush"] = entry.brush
    row["strokes"] = [np.round(line.astype(np.float64), DECIMALS).tolist() for line in entry.strokes]
    return json.dumps(row, separators=(",", ":")) + "\n"


def _is_strokes_file(name: str) -> bool:
    """STROKES_FILE at the top of the archive, or in the one folder that holds it all (DIR/strokes.ndjson)."""
    parts = name.replace("\\", "/").split("/")
    return parts[-1] == STROKES_FILE and len(parts) <= 2 and not name.startswith(("/", "\\")) and ".." not in parts


def _read_strokes_file(archive: zipfile.ZipFile, member: zipfile.ZipInfo):
    """(name, entry or None, why, picture's name) for each line of a STROKES_FILE member, bounded in size."""
    if member.file_size > MAX_STROKES_FILE_BYTES or member.compress_type not in (
        zipfile.ZIP_STORED,
        zipfile.ZIP_DEFLATED,
    ):
        yield member.filename, None, "strokes file too large or compressed in an unsupported way", None
        return
    try:
        with archive.open(member) as stream:
            text = stream.read(MAX_STROKES_FILE_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError):
        yield member.filename, None, "damaged, encrypted or unsupported zip entry", None
        return
    folder = member.filename.rsplit("/", 1)[0] + "/" if "/" in member.filename else ""
    for number, line in enumerate(text.split(b"\n"), 1):
        if line.strip():
            entry, why, png = _read_strokes_line(line)
            yield f"{member.filename}:{number}", entry, why, folder + png if png else None


def _read_strokes_line(line: bytes) -> tuple[Entry | None, str, str | None]:
    """One line of STROKES_FILE -> (entry, "", its picture's name) or (None, why, None)."""
    if len(line) > MAX_LINE_BYTES:
        return None, "line too long", None
    try:
        row = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not a JSON line", None
    if not isinstance(row, dict):
        return None, "not a JSON object", None
    try:
        label = check_label(row.get("label", row.get("word")))
        strokes = strokes_from_quickdraw(row["drawing"]) if "drawing" in row else row.get("strokes")
    except ValueError as err:
        return None, str(err), None
    brush = row.get("brush")
    if brush is not None and not (
        isinstance(brush, (int, float)) and not isinstance(brush, bool) and 0 < brush <= MAX_COORD
    ):
        return None, "the brush must be a positive number", None
    entry, why = _strokes_entry(strokes, label, brush)
    png = row.get("png")
    return entry, why, png if isinstance(png, str) and entry is not None else None


def _identity(entry: Entry) -> tuple[int, bytes]:
    """What makes two entries the same drawing: the digit and the 28 x 28 image the network sees."""
    return entry.label, entry.image.tobytes()


def _check_directory(data: bytes) -> None:
    """Refuse an archive whose central directory is too big before `zipfile` parses all of it.

    `zipfile` reads every directory record when it opens an archive, however many the end record
    claims, so a 32 MB zip of empty entries would cost hundreds of MB of ZipInfo objects. The end record
    is found as `zipfile` finds it (at the very end, else the last signature in the comment window).
    """
    tail = data[-(EOCD_SIZE + MAX_COMMENT) :]
    at = len(tail) - EOCD_SIZE if tail[-EOCD_SIZE : -EOCD_SIZE + 4] == EOCD_SIGNATURE else tail.rfind(EOCD_SIGNATURE)
    if at < 0 or len(tail) - at < EOCD_SIZE:
        raise ValueError("not a zip file (no end-of-archive record)")
    if tail[max(0, at - ZIP64_LOCATOR_SIZE) : at].startswith(ZIP64_LOCATOR_SIGNATURE):
        raise ValueError("zip64 archives are not accepted: a set of drawings never needs one")
    (directory_bytes,) = struct.unpack("<I", tail[at + 12 : at + 16])
    if directory_bytes > MAX_DIRECTORY_BYTES:
        raise ValueError(f"the zip's directory is {directory_bytes:,} bytes; at most {MAX_DIRECTORY_BYTES:,}")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, label: int) -> tuple[Entry | None, str]:
    """(entry, "") or (None, why) for one archive member.

    Only stored and deflated members are read, with a size limit: `zipfile` bounds deflate's output by
    the size asked for, but a bare `read()` asks for 2 GB, and bzip2 and LZMA are never bounded.
    """
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None, "unsupported compression"
    try:
        with archive.open(member) as stream:
            data = stream.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError):
        return None, "damaged, encrypted or unsupported zip entry"  # RuntimeError: encrypted
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        if image.width * image.height > MAX_IMAGE_PIXELS:
            return None, "image too large"
        image.load()
    except Image.UnidentifiedImageError:
        return None, "not an image"
    except Image.DecompressionBombError:
        return None, "image too large"
    except Exception:  # a decoder fails in many ways on hostile bytes; all mean the same to the visitor
        return None, "damaged image"
    try:
        sketch = sketch_to_tensor(image)
    except ValueError as err:  # sizes and modes the canvas reader refuses, with its reason
        return None, f"unusable image ({err})"
    if sketch is None:
        return None, "blank image"
    return Entry(np.array(sketch.image, np.uint8), keepsake(image, sketch), label), ""
