"""Pen-up to answer shown, in headless chromium: the real Draw tab against a bare gr.Sketchpad in the same run.

`python -m testkit.pad_apps` serves, from one process of its own on one torch thread as the app's requests
run: app.py's demo, launched as app.py launches it (its Draw tab reads the strokes with the shipped CNN:
parse, split into digits, draw at 28 x 28, forward, the panel's value; the explanation follows in a
second event, not timed); a gr.Sketchpad set up as the Draw tab's was, whose handler does no work at all;
and in full runs, to see where the time goes, the stroke pad alone with a handler that does nothing,
through Gradio's queue and outside it (what Gradio's event path costs without our handler). One chromium page each;
testkit's digits are drawn with the mouse, the pages taking turns digit by digit (Clear in between,
untimed) so that load from other processes hits them alike; a page waiting for its turn is frozen
(CDP's Page.setWebLifecycleState), or an idle Sketchpad's animation loop would take ~15% of a core from
the page being timed. For each stroke, measured in the page with
performance.now(): from the pointerup to the DOM showing that stroke's answer (the app: the reading
panel's 'reading' event for the server's reading, dispatched once the panel is updated; the others: a
MutationObserver on the answer count they show). Bytes per stroke: the bodies (Content-Length) of every
request the page sent from that pen-down to the next action (Playwright's request events), uploads
included. In-process rows time the Draw tab's handler on recorded strokes, and the strokes' reading
(`strokes_to_sketch`) against the raster path on the same strokes drawn 280 x 280 (`sketch_to_tensor`).

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
from testkit.browser import PX_PER_STEP, Pad, StrokePad, chromium_missing, digit, launch, new_page, wait_until
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
FLOORS = ("pad, no work, no queue", "pad, no work")  # testkit.pad_apps's, measured in full runs only

# Each page notes when the pointer went up, and [answers shown so far, ms since then] each time the answer
# count changes: the small apps show it (#events, "N answers": a MutationObserver may see one answer's
# change more than once, hence the text), the app's panel says when it shows a reading from the server.
_WATCH = """(app) => { window.__lat = {up: 0, shown: [], readings: 0};
  document.addEventListener('pointerup', () => { window.__lat.up = performance.now(); }, true);
  const note = (text) => window.__lat.shown.push([text, performance.now() - window.__lat.up]);
  if (app) { document.querySelector('#pred').addEventListener('reading', (e) => {
    if (e.detail.source !== 'page') note(`${++window.__lat.readings} answers`); }); return; }
  const box = document.querySelector('#events');
  new MutationObserver(() => note(box.innerText.trim()))
    .observe(box, {subtree: true, childList: true, characterData: true}); }"""
# The first time answer n was shown: [text, ms].
_SHOWN = "(n) => window.__lat.shown.find(([text]) => text.startsWith(n + ' answers'))"


@contextmanager
def served_apps(names: list[str]):
    """The apps `names` in `python -m testkit.pad_apps`, its own process group; yields {name: url}."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "testkit.pad_apps", *names],
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

    def __init__(self, browser, url: str, stroke_pad: bool, app: bool = False):
        self.page = new_page(browser, url)
        self.stroke_pad = stroke_pad
        self.pad = StrokePad(self.page) if stroke_pad else Pad(self.page)
        if stroke_pad:
            self.pad.wait_until_ready()
        else:
            self.pick_brush()
        self.page.evaluate(_WATCH, app)
        self.cdp = self.page.context.new_cdp_session(self.page)
        self.cdp.send("Page.enable")
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
        wait_until(self.page, _SHOWN, self.answers, lambda: f"answer {self.answers} was never shown ({self.page.url})")

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
        shown = self.page.evaluate(_SHOWN, self.answers)
        if timed:
            self.latencies.append(shown[1])

    def freeze(self, frozen: bool) -> None:
        """Stop (or restart) the page's scripts, timers and animation frames while other pages are timed."""
        self.cdp.send("Page.setWebLifecycleState", {"state": "frozen" if frozen else "active"})

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


def browser_rows(n: int, floors: bool) -> list[Result]:
    """Latency and bytes per stroke, the Draw tab against a bare Sketchpad; with `floors`, the pad's transport
    alone (with a handler that does nothing), through the queue and outside it."""
    from playwright.sync_api import sync_playwright

    names = ["app", "sketchpad", *(FLOORS if floors else [])]
    with served_apps(names) as urls, sync_playwright() as playwright:
        browser = launch(playwright)
        # The Draw tab with the page's own reader off: this is the server's pen-up path (issue 13), and with
        # the reader on, the panel holds back server answers the page has already shown (page_reading times
        # the page's path).
        urls["app"] += "?page_model=off"
        pages = {
            name: Page(browser, url, stroke_pad=name != "sketchpad", app=name == "app") for name, url in urls.items()
        }
        drawn = dict.fromkeys(pages, 0)
        for page in pages.values():
            page.freeze(True)
        for text in itertools.cycle(DIGITS):
            if min(drawn.values()) >= WARMUP + n:
                break
            for name, page in pages.items():  # in turns: load changes hit all alike
                page.freeze(False)
                drawn[name] += page.digit(text, timed=drawn[name] >= WARMUP)
                page.page.wait_for_timeout(100)  # the explanation that follows the last answer is fetched
                page.freeze(True)
        for page in pages.values():
            page.freeze(False)
            page.page.wait_for_timeout(500)  # the last requests finish and are counted
        browser.close()
    app, sketchpad = Stats.of(pages["app"].latencies), Stats.of(pages["sketchpad"].latencies)
    app_bytes, sketchpad_bytes = (Stats.of(pages[k].bytes) for k in ("app", "sketchpad"))
    speedup = sketchpad.median / app.median
    rows = [
        Result.timed(
            NAME,
            "pen-up to verdict shown, the Draw tab",
            app,
            baseline=sketchpad.median,
            baseline_label="bare gr.Sketchpad",
            ratio=speedup,
            target=f"median < {TARGET_MEDIAN_MS:g} ms, >= {TARGET_SPEEDUP:g}x faster",
            passed=app.median < TARGET_MEDIAN_MS and speedup >= TARGET_SPEEDUP,
            note=f"headless chromium, mouse strokes of testkit's digits, {app.n} strokes each, the apps in turns; "
            f"p95 {app.p95:.0f} ms (Sketchpad {sketchpad.p95:.0f} ms); ratio = Sketchpad / Draw tab. app.py as "
            "launched, reading the strokes with the CNN into the reading panel; the Sketchpad's handler does nothing",
        ),
        Result.timed(NAME, "  bare gr.Sketchpad, handler does nothing", sketchpad),
        Result.timed(
            NAME,
            "bytes sent per stroke, the Draw tab",
            app_bytes,
            unit="B",
            baseline=sketchpad_bytes.median,
            baseline_label="bare gr.Sketchpad",
            ratio=sketchpad_bytes.median / max(1.0, app_bytes.median),
            note="request bodies (Content-Length) from pen-down to the next action: the strokes drawn so far as "
            "JSON, for the reading and then its explanation; for the Sketchpad, its PNG uploads too; ratio = "
            "Sketchpad / Draw tab",
        ),
    ]
    if floors:
        unqueued, queued = (Stats.of(pages[k].latencies) for k in FLOORS)
        rows[2:2] = [
            Result.timed(
                NAME,
                "  stroke pad, handler does nothing, outside the queue",
                unqueued,
                note="the Draw tab's transport (one POST, queue=False) with a handler that only counts: Gradio's "
                "event path, the network and the page without our reading",
            ),
            Result.timed(
                NAME,
                "  stroke pad, handler does nothing, through the queue",
                queued,
                note="the same through Gradio's queue (a join request and its event stream), as /predict goes",
            ),
        ]
    return rows


def in_process_rows(n: int) -> list[Result]:
    """The Draw tab's handler on recorded drawings; their reading against the raster path on the same strokes."""
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
        handler = handler_stats(rows, n)
    strokes, raster = stats["strokes"].scaled(1e3), stats["raster"].scaled(1e3)
    cpu_start = time.process_time()
    for row in rows:
        strokes_to_sketch(row["strokes"])
    cpu_ms = 1e3 * (time.process_time() - cpu_start) / len(rows)
    return [
        Result.timed(
            NAME,
            "the Draw tab's handler, in-process",
            handler,
            note=f"DrawHandlers.read on the pad's JSON of each of the {len(rows)} recorded drawings, one torch "
            "thread: parse and check, split into digits, draw at 28 x 28, the CNN, the panel's value; what the "
            "pen-up rows spend in our code",
        ),
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
        ),
    ]


def handler_stats(rows: list[dict], n: int) -> Stats:
    """ms per call of the Draw tab's stroke handler on the recorded drawings (the pad's JSON, the CNN)."""
    from ui.common import Models
    from ui.draw import DrawHandlers

    handlers = DrawHandlers(Models.shipped())
    values = [json.dumps(r["strokes"]) for r in rows]
    handlers.read(values[0], "cnn", None)  # loads code paths
    samples = []
    for i in range(n):
        start = time.perf_counter()
        handlers.read(values[i % len(values)], "cnn", None)
        samples.append(1e3 * (time.perf_counter() - start))
    return Stats.of(samples)


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark; the browser rows say so when chromium is missing."""
    rows = in_process_rows(READS[quick])
    reason = chromium_missing()
    if reason:
        return rows + [Result(NAME, "pen-up to answer shown", math.nan, "ms", note=f"not measured: {reason}")]
    return browser_rows(STROKES[quick], floors=not quick) + rows
