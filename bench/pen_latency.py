"""Pen-up to answer shown, in headless chromium: the stroke pad against a bare gr.Sketchpad in the same run.

Small apps (testkit/pad_apps.py) run in a process of their own on one torch thread, as the app's
requests do: the stroke pad, whose handler reads the strokes with the shipped CNN (parse, split into
digits, draw at 28 x 28, forward), and a gr.Sketchpad set up as app.py's whose handler does no work at
all; for information, the stroke pad with a handler that does nothing (what Gradio's transport costs) and
with the real handler outside Gradio's queue (queue=False). One chromium page each; testkit's digits are
drawn with the mouse, the pages taking turns digit by digit (Clear in between, untimed) so that load from
other processes hits them alike. For each stroke, measured in the page with performance.now(): from the
pointerup to the DOM showing that stroke's answer (a MutationObserver on the answer count every app shows
with its Label). Bytes per stroke: the bodies (Content-Length) of every request the page sent from that
pen-down to the next action (Playwright's request events), uploads included. A last row times the
strokes' reading in-process (`strokes_to_sketch`) against the raster path on the same strokes drawn
280 x 280 (`sketch_to_tensor`).

    python -m bench --only pen_latency [--quick]
"""

from __future__ import annotations

import itertools
import json
import math
import os
import select
import subprocess
import sys
import time
from contextlib import contextmanager

from bench.report import Result
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.strokes import strokes_to_sketch
from testkit.browser import PX_PER_STEP, Pad, StrokePad, chromium_missing, digit, launch, new_page, wait_for_text
from testkit.server import ROOT, START_TIMEOUT_S, stop
from testkit.sketches import rasterise
from testkit.timing import Stats, interleaved, one_torch_thread

NAME = "pen_latency"
STROKES = {True: 8, False: 30}  # timed strokes per app, quick / full
WARMUP = 2  # strokes per app drawn first and not timed: the first loads code paths on both sides
READS = {True: 100, False: 500}  # in-process calls per variant
TARGET_MEDIAN_MS = 50.0
TARGET_SPEEDUP = 10.0
DIGITS = "1745239068"  # one or two strokes each
RECORDED = ROOT / "tests" / "drawings" / "strokes.ndjson"

# Each page notes when the pointer went up, and when the answer count (#events) changed and to what.
_WATCH = """() => { window.__lat = {up: 0, shown: []};
  document.addEventListener('pointerup', () => { window.__lat.up = performance.now(); }, true);
  const box = document.querySelector('#events');
  new MutationObserver(() => { window.__lat.shown.push([box.innerText.trim(), performance.now() - window.__lat.up]); })
    .observe(box, {subtree: true, childList: true, characterData: true}); }"""


@contextmanager
def served_apps():
    """Both apps in `python -m testkit.pad_apps`, its own process group; yields {"pad": url, "sketchpad": url}."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "testkit.pad_apps"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
        line = process.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"python -m testkit.pad_apps printed no URLs within {START_TIMEOUT_S} s")
        yield json.loads(line)
    finally:
        stop(process)


class Page:
    """One app's page: draws strokes, waits for each answer, and keeps each stroke's latency and bytes."""

    def __init__(self, browser, url: str, stroke_pad: bool):
        self.page = new_page(browser, url)
        self.stroke_pad = stroke_pad
        self.pad = StrokePad(self.page) if stroke_pad else Pad(self.page)
        if stroke_pad:
            self.pad.wait_until_ready()
        else:
            self.pick_brush()
        self.page.evaluate(_WATCH)
        self.answers = 0
        self.latencies: list[float] = []  # ms, pen-up to answer shown, per timed stroke
        self.bytes: list[int] = []  # request bodies per timed stroke
        self.counting: int | None = None  # the index in `bytes` that requests count towards now
        self.started: dict = {}  # request -> the index it counts towards, from when it was sent
        self.page.on("request", lambda request: self.started.__setitem__(request, self.counting))
        self.page.on("requestfinished", self._count)

    def _count(self, request) -> None:
        index = self.started.pop(request, None)
        if index is not None:
            # Playwright reads JSON bodies but not uploaded files, whose length only the headers tell
            # (and those of a connection's first request can lack it): whichever says more.
            body = request.post_data_buffer
            length = int(request.all_headers().get("content-length", 0))
            self.bytes[index] += max(len(body) if body else 0, length)

    def pick_brush(self) -> None:
        """The Sketchpad starts, and clears, with no tool: pick the brush as app.py's script does."""
        self.page.click('#pad button[aria-label="Brush"]')
        self.pad.wait_until_ready()

    def _wait_for_answer(self) -> None:
        self.answers += 1
        wait_for_text(self.page, "#events", rf"^{self.answers} answers")

    def stroke(self, line: list, timed: bool) -> None:
        """Draw one stroke with the mouse and wait for its answer; note its latency and bytes if `timed`."""
        if self.stroke_pad:
            box, to_page = self.pad.canvas.bounding_box(), self.pad.to_page
        else:
            box = self.page.locator("#pad canvas").first.bounding_box()
            zoom = self.pad.zoom()
            to_page = lambda u, v, b: self.pad.to_page(u, v, b, zoom)  # noqa: E731
        mouse = self.page.mouse
        mouse.move(*to_page(*line[0], box))
        if timed:
            self.bytes.append(0)
        self.counting = len(self.bytes) - 1 if timed else None
        mouse.down()
        for a, b in zip(line, line[1:]):
            mouse.move(*to_page(*b, box), steps=max(1, math.ceil(math.dist(a, b) / PX_PER_STEP)))
        mouse.up()
        self._wait_for_answer()
        shown = self.page.evaluate(
            "(n) => window.__lat.shown.find(([text]) => text.startsWith(n + ' answers'))", self.answers
        )
        if timed:
            self.latencies.append(shown[1])

    def digit(self, text: str, timed: bool) -> int:
        """Draw a digit stroke by stroke, then Clear (untimed); the strokes drawn."""
        strokes = digit(text, height=170)
        for line in strokes:
            self.stroke(line, timed)
        self.counting = None  # Clear's requests are not a stroke's
        if self.stroke_pad:
            self.pad.clear()
        else:
            self.page.click('#pad button[aria-label="Clear canvas"]')
        self._wait_for_answer()
        if not self.stroke_pad:
            self.pick_brush()
        return len(strokes)


def browser_rows(n: int) -> list[Result]:
    """Latency and bytes per stroke, stroke pad against Sketchpad."""
    from playwright.sync_api import sync_playwright

    with served_apps() as urls, sync_playwright() as playwright:
        browser = launch(playwright)
        pages = {name: Page(browser, url, stroke_pad=name != "sketchpad") for name, url in urls.items()}
        drawn = dict.fromkeys(pages, 0)
        for text in itertools.cycle(DIGITS):
            if min(drawn.values()) >= WARMUP + n:
                break
            for name, page in pages.items():  # in turns: load changes hit both alike
                drawn[name] += page.digit(text, timed=drawn[name] >= WARMUP)
        for page in pages.values():
            page.page.wait_for_timeout(500)  # the last requests finish and are counted
        browser.close()
    pad, sketchpad, no_work, no_queue = (
        Stats.of(pages[k].latencies) for k in ("pad", "sketchpad", "pad, no work", "pad, no queue")
    )
    pad_bytes, sketchpad_bytes = (Stats.of(pages[k].bytes) for k in ("pad", "sketchpad"))
    speedup = sketchpad.median / pad.median
    return [
        Result.timed(
            NAME,
            "pen-up to answer shown, stroke pad",
            pad,
            baseline=sketchpad.median,
            baseline_label="bare gr.Sketchpad",
            ratio=speedup,
            target=f"median < {TARGET_MEDIAN_MS:g} ms, >= {TARGET_SPEEDUP:g}x faster",
            passed=pad.median < TARGET_MEDIAN_MS and speedup >= TARGET_SPEEDUP,
            note=f"headless chromium, mouse strokes of testkit's digits, {pad.n} strokes each, the apps "
            f"in turns; p95 {pad.p95:.0f} ms (Sketchpad {sketchpad.p95:.0f} ms); ratio = Sketchpad / stroke "
            "pad. The stroke pad's handler reads the strokes with the CNN; the Sketchpad's does nothing",
        ),
        Result.timed(NAME, "  bare gr.Sketchpad, handler does nothing", sketchpad),
        Result.timed(
            NAME,
            "  stroke pad, handler does nothing",
            no_work,
            note="the same pad and transport with a handler that only counts: what Gradio's queue, the "
            "network and the page cost without the reading",
        ),
        Result.timed(
            NAME,
            "  stroke pad, queue=False",
            no_queue,
            note="the real handler outside Gradio's queue: one POST and its answer instead of the queue's "
            "join and event stream (and no concurrency limit)",
        ),
        Result.timed(
            NAME,
            "bytes sent per stroke, stroke pad",
            pad_bytes,
            unit="B",
            baseline=sketchpad_bytes.median,
            baseline_label="bare gr.Sketchpad",
            ratio=sketchpad_bytes.median / max(1.0, pad_bytes.median),
            note="request bodies (Content-Length) from pen-down to the next action: the strokes drawn so far "
            "as JSON in the queue request; for the Sketchpad, its PNG uploads too; ratio = Sketchpad / "
            "stroke pad",
        ),
    ]


def in_process_rows(n: int) -> list[Result]:
    """Reading one recorded drawing's strokes, against the raster path on the same strokes drawn 280 x 280."""
    rows = [json.loads(line) for line in RECORDED.read_text().splitlines()]
    pictures = [rasterise(r["strokes"], brush=r["brush"]) for r in rows]
    points = sorted(sum(len(s) for s in r["strokes"]) for r in rows)
    with one_torch_thread():
        stats = interleaved(
            {
                "strokes": lambda i: strokes_to_sketch(rows[i % len(rows)]["strokes"]),
                "raster": lambda i: sketch_to_tensor(pictures[i % len(pictures)]),
            },
            n,
        )
    strokes, raster = stats["strokes"].scaled(1e3), stats["raster"].scaled(1e3)
    cpu_start = time.process_time()
    for row in rows:
        strokes_to_sketch(row["strokes"])
    cpu_ms = 1e3 * (time.process_time() - cpu_start) / len(rows)
    return [
        Result.timed(
            NAME,
            "strokes_to_sketch, one digit in-process",
            strokes,
            baseline=raster.median,
            baseline_label="raster path, same strokes",
            ratio=raster.median / strokes.median,
            note=f"the {len(rows)} drawings of {RECORDED.relative_to(ROOT)} ({points[len(points) // 2]} points "
            f"each, median), one torch thread; CPU time {cpu_ms:.2f} ms a drawing; baseline: sketch_to_tensor "
            "on the same strokes drawn by PIL 20 px wide on 280 x 280 (the canvas already drawn); ratio = "
            "raster / strokes",
        )
    ]


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark; the browser rows say so when chromium is missing."""
    rows = in_process_rows(READS[quick])
    reason = chromium_missing()
    if reason:
        return rows + [Result(NAME, "pen-up to answer shown", math.nan, "ms", note=f"not measured: {reason}")]
    return browser_rows(STROKES[quick]) + rows
