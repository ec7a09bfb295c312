"""Real drawings for tests/drawings/: digits drawn with the mouse on the app's stroke pad, kept as the server got them.

A tiny Gradio app holds the Draw tab's stroke pad (ui/pad.py); its `.change` handler keeps the strokes it
receives. Debian's chromium, driven by Playwright, draws each digit as mouse strokes (testkit/sketches.py's
polylines, scaled, moved, slanted, jittered and rounded), waits until the server holds the whole drawing
(one stroke per stroke drawn, each starting and ending where the mouse did), writes it as one JSON line,
{"label", "source", "brush", "strokes"} (x, y in the pad's pixels, t in ms: the format `evaluate --strokes`
reads), and clears the pad. With --pictures DIR, each drawing is also drawn as the pad shows it (PIL, the
pad's pen, black on 280 x 280 white) to DIR/<digit>/<name>.png.

The drawings in tests/drawings/<digit>/*.png were made by an earlier version of this script on a
gr.Sketchpad (its composites, as the server got them); their strokes are tests/drawings/strokes.ndjson.

    python scripts/capture_drawings.py [--out tests/drawings/strokes.ndjson] [--pictures DIR] [--only 4/split-strokes]
    python scripts/capture_drawings.py --planned --out FILE    # the strokes as planned, without a browser
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py and tests/ live at the repository root
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mnist_demo.strokes import BRUSH, PAD_SIDE  # noqa: E402
from testkit.browser import StrokePad, chromium_missing, launch, new_page, place, smooth  # noqa: E402
from testkit.sketches import SPLIT_FOUR, STROKES, rasterise  # noqa: E402

ARRIVAL_S = 60  # the whole drawing reaches the server within this, even on a busy machine
NEAR_PX = 2  # a received stroke starts and ends within this of where the mouse pressed and let go
PICTURES_IN = ROOT / "tests" / "drawings"  # where the drawings' names point ("source")

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


def whole_drawing(received: list | None, strokes: list) -> bool:
    """Does the server hold exactly these strokes: as many, each from where the mouse pressed to where it let go?"""
    if not received or len(received) != len(strokes):
        return False
    return all(
        math.dist(got[0][:2], line[0]) <= NEAR_PX and math.dist(got[-1][:2], line[-1]) <= NEAR_PX
        for got, line in zip(received, strokes)
    )


class Inbox:
    """What the stroke pad's `.change` handler last received, for the script's thread to read."""

    def __init__(self):
        self.lock = threading.Lock()
        self.strokes: list | None = None
        self.count = 0

    def receive(self, value):
        from ui.pad import parse_pad_value

        strokes = parse_pad_value(value)
        with self.lock:
            self.strokes = strokes
            self.count += 1
        return f"{self.count} drawings received"

    def wait_for(self, strokes: list) -> list:
        deadline = time.monotonic() + ARRIVAL_S
        while time.monotonic() < deadline:
            with self.lock:
                received = self.strokes
            if whole_drawing(received, strokes):
                return received
            time.sleep(0.1)
        raise TimeoutError(f"the server did not receive the whole drawing within {ARRIVAL_S} s")


def build_capture_app(inbox: Inbox):
    """The Draw tab's stroke pad, whose every change lands in `inbox`."""
    import gradio as gr

    from ui.pad import stroke_pad

    with gr.Blocks(title="capture drawings") as demo:
        pad = stroke_pad()
        received = gr.Textbox(label="received", elem_id="received")
        pad.change(inbox.receive, pad, received, show_progress="hidden", trigger_mode="always_last")
    return demo


def line_for(name: str, digit: str, strokes: list) -> str:
    """One drawing as a JSON line of the strokes file."""
    source = PICTURES_IN / f"{name}.png"
    source_name = str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source)
    return json.dumps({"label": digit, "source": source_name, "brush": BRUSH, "strokes": strokes})


def write_planned(out: Path, only: list[str] | None) -> None:
    """Every drawing's strokes as planned (no browser), coordinates to 0.01 px."""
    lines = []
    for name, (digit, unit_strokes, style) in DRAWINGS.items():
        if not only or name in only:
            strokes = [[[round(x, 2), round(y, 2)] for x, y in line] for line in strokes_for(unit_strokes, style)]
            lines.append(line_for(name, digit, strokes))
    out.write_text("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} drawings as strokes, as planned")


def capture(out: Path, pictures: Path | None, only: list[str] | None) -> None:
    """Draw every drawing on the stroke pad in chromium; write what the server received."""
    from playwright.sync_api import sync_playwright

    inbox = Inbox()
    demo = build_capture_app(inbox)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    lines = []
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = new_page(browser, url)
            pad = StrokePad(page)
            pad.wait_until_ready()
            for name, (digit, unit_strokes, style) in DRAWINGS.items():
                if only and name not in only:
                    continue
                strokes = strokes_for(unit_strokes, style)
                if lines:  # Clear is disabled on an empty pad
                    pad.clear()
                    pad.wait_for_strokes(0)
                pad.draw(strokes)
                received = inbox.wait_for(strokes)
                lines.append(line_for(name, digit, received))
                points = sum(len(line) for line in received)
                if pictures is not None:
                    path = pictures / f"{name}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    rasterise(received, size=(PAD_SIDE, PAD_SIDE), brush=BRUSH).save(path, optimize=True)
                print(f"{name}: a {digit}, {len(received)} strokes, {points} points")
            browser.close()
    finally:
        demo.close()
    out.write_text("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} drawings as the server received them")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PICTURES_IN / "strokes.ndjson", help="the strokes file to write")
    parser.add_argument("--pictures", type=Path, metavar="DIR", help="also draw each drawing to DIR/<digit>/<name>.png")
    parser.add_argument("--only", nargs="*", help="names to draw (e.g. 4/split-strokes); default: all")
    parser.add_argument("--planned", action="store_true", help="write the strokes as planned, without a browser")
    args = parser.parse_args()
    if args.planned:
        write_planned(args.out, args.only)
        return 0
    reason = chromium_missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    capture(args.out, args.pictures, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
