"""Real drawings for tests/drawings/: digits drawn with the mouse on a real Sketchpad, saved as the server got them.

A tiny Gradio app holds a Sketchpad set up exactly like app.py's (canvas size, brush, the script that
picks the brush); its `.change` handler keeps the composite it receives (RGBA numpy). Debian's chromium,
driven by Playwright, draws each digit as mouse strokes (testkit/sketches.py's polylines, scaled, moved,
slanted, jittered and rounded), waits until the server holds the whole drawing (ink under every point of
every stroke, none elsewhere), saves it to tests/drawings/<digit>/<name>.png and clears the pad.

With --strokes, no browser: the strokes of the same drawings (the mouse's path, in canvas pixels) go to one
JSON line per drawing, {"label", "source", "brush", "strokes"}, the stroke pad's format (mnist_demo.strokes).

    python scripts/capture_drawings.py [--out tests/drawings]
    python scripts/capture_drawings.py --strokes tests/drawings/strokes.ndjson
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py and tests/ live at the repository root
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from testkit.browser import Pad, chromium_missing, launch, new_page, place, smooth  # noqa: E402
from testkit.sketches import SPLIT_FOUR, STROKES  # noqa: E402

ARRIVAL_S = 60  # the whole drawing reaches the server within this, even on a busy machine
NEAR_PX = 4  # an ink check looks this far around each point the mouse went through
STRAY_SHARE = 0.01  # at most this share of the ink may lie away from the strokes drawn

# A 5 whose top bar is lifted off its body: two strokes that do not touch.
DETACHED_FIVE = [STROKES["5"][0], [(0.36, 0.0), (0.9, 0.0)]]

# name -> (digit, strokes in the unit box, how they are placed: see testkit.browser.place). Sizes from a
# third of the canvas to two thirds, centres all over it, slants both ways, a shaky hand on some.
DRAWINGS: dict[str, tuple[str, list, dict]] = {}
_STYLES = {
    "big-upright": {"height": 190, "centre": (140, 140), "jitter": 2},
    "small-top-left-leaning-right": {"height": 95, "centre": (90, 85), "slant": 0.25, "jitter": 2},
    "medium-bottom-right-leaning-left": {"height": 140, "centre": (175, 170), "slant": -0.15, "jitter": 5},
}
for _d in "0123456789":
    for _i, (_name, _style) in enumerate(_STYLES.items()):
        DRAWINGS[f"{_d}/{_name}"] = (_d, STROKES[_d], {**_style, "seed": 10 * int(_d) + _i})
DRAWINGS["4/split-strokes"] = ("4", SPLIT_FOUR, {"height": 170, "centre": (150, 140), "slant": 0.1, "seed": 1})
DRAWINGS["5/detached-bar"] = ("5", DETACHED_FIVE, {"height": 170, "centre": (135, 145), "jitter": 2, "seed": 2})
DRAWINGS["1/small-top-right-leaning-right"] = ("1", STROKES["1"], {"height": 110, "centre": (200, 90), "slant": 0.25})
DRAWINGS["7/narrow"] = ("7", STROKES["7"], {"height": 200, "aspect": 0.45, "centre": (130, 140), "seed": 3})


def strokes_for(unit_strokes: list, style: dict) -> list:
    """Canvas-pixel strokes, rounded like a hand's (two extra points per segment)."""
    return [smooth(line) for line in place(unit_strokes, **style)]


def expected_ink(strokes: list, size: int, radius: float) -> np.ndarray:
    """(size, size) bool: where strokes of brush `radius` could have put ink, with NEAR_PX of slack."""
    image = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(image)
    r = radius + NEAR_PX
    for line in strokes:
        pen.line(line, fill=255, width=int(2 * r))
        for x, y in line:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(image) > 0


def whole_drawing(composite: np.ndarray | None, strokes: list, radius: float) -> bool:
    """Does the composite hold exactly these strokes: ink near every point drawn, hardly any elsewhere?"""
    if composite is None:
        return False
    ink = composite[..., :3].min(axis=2) < 128  # black on white paper
    if not ink.any():
        return False
    for line in strokes:
        for x, y in line:
            r, c = int(round(y)), int(round(x))
            if not ink[max(0, r - NEAR_PX) : r + NEAR_PX + 1, max(0, c - NEAR_PX) : c + NEAR_PX + 1].any():
                return False
    stray = ink & ~expected_ink(strokes, ink.shape[0], radius)
    return stray.sum() <= STRAY_SHARE * ink.sum()


class Inbox:
    """What the Sketchpad's `.change` handler last received, for the script's thread to read."""

    def __init__(self):
        self.lock = threading.Lock()
        self.composite: np.ndarray | None = None
        self.count = 0

    def receive(self, value):
        composite = None if not value else value.get("composite")
        with self.lock:
            self.composite = None if composite is None else np.array(composite)
            self.count += 1
        return f"{self.count} drawings received"

    def wait_for(self, strokes: list, radius: float) -> np.ndarray:
        deadline = time.monotonic() + ARRIVAL_S
        while time.monotonic() < deadline:
            with self.lock:
                composite = self.composite
            if whole_drawing(composite, strokes, radius):
                return composite
            time.sleep(0.1)
        raise TimeoutError(f"the server did not receive the whole drawing within {ARRIVAL_S} s")


def build_capture_app(inbox: Inbox):
    """A Sketchpad exactly like app.py's, whose every change lands in `inbox`."""
    import gradio as gr

    from app import BRUSH_RADIUS, CANVAS_SIZE, PICK_BRUSH

    with gr.Blocks(title="capture drawings") as demo:
        pad = gr.Sketchpad(
            canvas_size=(CANVAS_SIZE, CANVAS_SIZE),
            type="numpy",
            elem_id="pad",
            brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
            layers=False,
            transforms=(),
            label="Draw a digit, or a few",
            buttons=[],
        )
        received = gr.Textbox(label="received", elem_id="received")
        pad.change(inbox.receive, pad, received, show_progress="hidden", trigger_mode="always_last")
        pad.clear(None, None, None, js=PICK_BRUSH)
        demo.load(None, None, None, js=PICK_BRUSH)
    return demo, CANVAS_SIZE, BRUSH_RADIUS


def save_png(composite: np.ndarray, path: Path) -> None:
    """The composite as it came: RGBA, opaque white paper, black ink (two colours: about 1 kB as a PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(composite.astype(np.uint8), "RGBA").save(path, optimize=True)


def write_strokes(path: Path, out: Path) -> None:
    """Every drawing's strokes as one JSON line each, in the order of DRAWINGS; coordinates to 0.01 px."""
    from app import BRUSH_RADIUS

    lines = []
    for name, (digit, unit_strokes, style) in DRAWINGS.items():
        source = out / f"{name}.png"
        strokes = [[[round(x, 2), round(y, 2)] for x, y in line] for line in strokes_for(unit_strokes, style)]
        source_name = str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)
        lines.append(json.dumps({"label": digit, "source": source_name, "brush": 2 * BRUSH_RADIUS, "strokes": strokes}))
    path.write_text("\n".join(lines) + "\n")
    print(f"{path}: {len(lines)} drawings as strokes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "drawings", help="folder of digit folders")
    parser.add_argument("--only", nargs="*", help="names to draw (e.g. 4/split-strokes); default: all")
    parser.add_argument("--strokes", type=Path, metavar="FILE", help="write the drawings' strokes to FILE instead")
    args = parser.parse_args()
    if args.strokes:
        write_strokes(args.strokes, args.out)
        return 0
    reason = chromium_missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    inbox = Inbox()
    demo, size, radius = build_capture_app(inbox)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = new_page(browser, url)
            pad = Pad(page, size=size)
            pad.wait_until_ready()
            for i, (name, (digit, unit_strokes, style)) in enumerate(DRAWINGS.items()):
                if args.only and name not in args.only:
                    continue
                strokes = strokes_for(unit_strokes, style)
                if i:
                    pad.clear()
                pad.draw(strokes)
                composite = inbox.wait_for(strokes, radius)
                path = args.out / f"{name}.png"
                save_png(composite, path)
                print(
                    f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: a {digit}, "
                    f"{path.stat().st_size} bytes"
                )
            browser.close()
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
