"""Screenshots of the real app for the README: a digit and a number in the Draw tab, the digit on the map of
digits, a finished run in the Train tab and its "watch it learn" section.

Launches app.py's `demo` in this process, drives it in Debian's chromium with real mouse strokes on the
stroke pad (the helpers of testkit/browser.py) and writes docs/draw.png, docs/map.png, docs/draw-number.png,
docs/train.png and docs/watch.png. Training needs MNIST (set MNIST_ROOT); about two minutes on 2 CPU cores.

    MNIST_ROOT=../shared/data python scripts/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py and tests/ live at the repository root
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from testkit.browser import (  # noqa: E402
    VIEWPORT,
    StrokePad,
    chromium_missing,
    digit,
    fill_training,
    launch,
    new_page,
    number,
    smooth,
    wait_for_empty,
    wait_for_plot,
    wait_for_points,
    wait_for_reading,
    wait_for_text,
)

TRAINING = {"Channels": 16, "Epochs": 3, "Training_images": 12_000}  # the app's defaults, one epoch more: ~25 s
TRAIN_WAIT_MS = 300_000  # the whole run, on a busy machine


def handwritten(strokes):
    """Rounder strokes than the test polylines: these are for people to look at."""
    return [smooth(line) for line in strokes]


def draw_tab(page, out: Path) -> None:
    pad = StrokePad(page)
    pad.draw(handwritten(digit("7", height=180, slant=0.12, jitter=3, seed=1)))
    wait_for_reading(page, "7")  # the verdict, the bars and the 28x28 input in the reading panel
    page.locator("#why img").wait_for()
    time.sleep(1)  # the explanation fades in
    page.screenshot(path=out / "draw.png")
    print(f"wrote {out / 'draw.png'}")
    wait_for_text(page, "#map-sentence", r"sits")  # the drawing is on the map, with its neighbours
    page.locator("#map-neighbours img").first.wait_for()
    time.sleep(1)
    page.locator("#map-of-digits").screenshot(path=out / "map.png")
    print(f"wrote {out / 'map.png'}")

    pad.clear()
    wait_for_empty(page)
    pad.draw(handwritten(number("42", height=120, gap=30)))
    wait_for_reading(page, "42")
    page.locator("#why img").wait_for()
    time.sleep(1)
    page.screenshot(path=out / "draw-number.png")
    print(f"wrote {out / 'draw-number.png'}")


def train_tab(page, out: Path) -> None:
    fill_training(page, "CNN", **TRAINING)
    page.click("#train")
    wait_for_plot(page, "#loss")
    wait_for_text(page, "#status", r"^done: ", timeout=TRAIN_WAIT_MS)
    wait_for_points(page, "#accuracy")  # a point per epoch
    page.locator("#mistakes img").first.wait_for()
    page.locator("#confusion img").wait_for()  # the heatmap
    wait_for_text(page, "#train-caption", rf"^After epoch {TRAINING['Epochs']} of")
    time.sleep(2)  # the gallery's images load one by one
    page.screenshot(path=out / "train.png", full_page=True)
    print(f"wrote {out / 'train.png'}")
    page.locator("#watch-it-learn").screenshot(path=out / "watch.png")
    print(f"wrote {out / 'watch.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    args = parser.parse_args()
    reason = chromium_missing()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    import app

    _, url, _ = app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = new_page(browser, url, viewport=VIEWPORT)
            StrokePad(page).wait_until_ready()
            draw_tab(page, args.out)
            train_tab(page, args.out)
            browser.close()
    finally:
        app.demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
