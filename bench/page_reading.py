"""The reading in the page while the pen moves, in headless chromium: per update, per second, and to the first one.

The real app's Draw tab (app.py's `build_demo`: the stroke pad, the reading panel, the map, the page-model
component following the picker, and the server reading on pen-up) runs in this process on one torch
thread, as the app's requests do. Three measurements:

1. Per update, each shipped model: `window.mnistDemo.read(strokes)` on the 34 real drawings re-recorded
   as strokes (tests/drawings/strokes.ndjson), strokes to verdict (split, 28x28, forward, words), each
   call timed with performance.now(); the baseline is the server's reading of the same strokes in this
   process (`read_strokes`, its verdict and label), taking turns with the page round by round. As in
   bench/page_model.py a CPU-time row (the renderer's, from /proc) hardly moves with other jobs' load.
2. Updates per second while drawing: the real drawings replayed into the pad's 'strokes' events, a few
   points per animation frame as a 120 Hz pointer gives them, for a few seconds; the readings the page
   made per second, and the frames per second it kept (against the same replay with the page's reading
   off, measured in turns with it).
3. Pen-down to first reading: testkit's digits drawn with the mouse on the pad, one stroke each, and
   timed in the page from the pointerdown to the first page reading, and to the server's answer shown
   (it reads on pen-up; the reading panel's 'reading' event with source "server"). Requests the page sent
   between pen-down and pen-up are counted from its resource timings (there should be none).

    python -m bench --only page_reading [--quick]
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.page_model import renderer_pids
from bench.report import Result
from mnist_demo.inference import read_strokes
from mnist_demo.reject import decline_threshold
from testkit.browser import StrokePad, chromium_missing, digit, launch, new_page, wait_until
from testkit.page_model import READS_WITH
from testkit.server import ROOT, cpu_seconds
from testkit.timing import Stats, one_torch_thread
from ui.common import SHIPPED, Models
from ui.page_model import PageModels, page_reference

NAME = "page_reading"
MODELS = tuple(SHIPPED)  # every shipped model: weights/<name>.safetensors, as the app's picker offers them
RECORDED = ROOT / "tests" / "drawings" / "strokes.ndjson"
ROUNDS = {True: 2, False: 6}  # turns of page, then server, over all drawings; quick / full
CPU_RUN_S = {True: 0.5, False: 2.0}  # CPU time of the CPU-time run (/proc counts in 10 ms ticks)
DRAW_S = {True: 2.0, False: 5.0}  # seconds of replayed drawing, reading on (and as long off), per turn
DRAW_TURNS = {True: 1, False: 2}
POINTS_PER_FRAME = 2  # a 120 Hz pointer's samples per 60 Hz frame
STROKES = {True: 4, False: 12}  # strokes drawn with the mouse for the pen-down timings
DIGITS = "1702396"  # testkit digits whose first stroke is most of the digit
TARGET_UPDATE_MS = 10.0  # the target for the CNN, per update
TARGET_RATE = 20.0  # updates per second while drawing
CLEAR_SETTLE_MS = 300  # after Clear, before the next stroke: the server's answer to it comes meanwhile

SETUP = "(drawings) => { window.benchDrawings = JSON.parse(drawings); }"
TIME_READS = """(rounds) => { const times = [];
  for (let r = 0; r < rounds; r++) for (const d of window.benchDrawings) {
    const start = performance.now(); window.mnistDemo.read(d); times.push(performance.now() - start); }
  return times; }"""
READ_MANY = """(calls) => { const ds = window.benchDrawings;
  for (let i = 0; i < calls; i++) window.mnistDemo.read(ds[i % ds.length]); }"""
# Replays the drawings into 'strokes' events on #pad, POINTS_PER_FRAME points per animation frame, for
# `seconds`; counts the page's readings and the frames. The stroke arrays grow in place, as the pad's do.
REPLAY = """([seconds, perFrame, reading]) => new Promise((done) => {
  window.mnistDemo.disabled = !reading;
  const pad = document.querySelector('#pad'), drawings = window.benchDrawings;
  let readings = 0, frames = 0, d = 0, s = 0, p = 0, strokes = [];
  const count = () => { readings += 1; };
  window.addEventListener('mnist-demo:reading', count);
  const start = performance.now();
  function frame(now) {
    frames += 1;
    if (now - start >= seconds * 1000) {
      window.removeEventListener('mnist-demo:reading', count);
      window.mnistDemo.disabled = false;
      return done({readings, frames, seconds: (performance.now() - start) / 1000});
    }
    for (let k = 0; k < perFrame; k++) {
      const drawing = drawings[d];
      if (p === 0) strokes.push([]);
      const point = drawing[s][p];
      strokes[strokes.length - 1].push([point[0], point[1], 0]);
      p += 1;
      if (p === drawing[s].length) { p = 0; s += 1; }
      if (s === drawing.length) { s = 0; d = (d + 1) % drawings.length; strokes = []; }
    }
    pad.dispatchEvent(new CustomEvent('strokes', {bubbles: true, detail: {strokes, drawing: true}}));
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})"""
# Per stroke drawn: pen-down, pen-up, the first page reading, the first after pen-up, the server's answer
# shown (the reading panel's 'reading' event from a server value; it keeps late answers to older strokes
# off screen, so only the answer to this stroke counts).
WATCH = """() => { window.__trial = null;
  document.addEventListener('pointerdown', () => { window.__trial = {down: performance.now(), up: 0, first: 0,
    last: 0, server: 0}; }, true);
  document.addEventListener('pointerup', () => { if (window.__trial) window.__trial.up = performance.now(); }, true);
  window.addEventListener('mnist-demo:reading', () => { const t = window.__trial; if (!t) return;
    const now = performance.now(); if (!t.first) t.first = now; if (t.up && !t.last) t.last = now; });
  document.querySelector('#pred').addEventListener('reading', (e) => { const t = window.__trial;
    if (t && t.up && !t.server && e.detail.source === 'server') t.server = performance.now(); }); }"""
SENT_DURING = """() => { const t = window.__trial;
  return performance.getEntriesByType('resource').filter((e) => e.startTime >= t.down && e.startTime <= t.up)
    .length; }"""
EMPTY = "() => document.querySelector('#pred .reading').classList.contains('is-empty')"


@contextmanager
def draw_tab() -> Iterator[tuple[str, Models]]:
    """The real app, built afresh and served on a free loopback port in this process; (its URL, its models).

    app.py's `launch` is not used: it tunes the whole process (torch threads, malloc) for the benchmarks
    that run after this one too.
    """
    from app import build_demo

    models = Models.shipped()
    demo = build_demo(models)
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, run_history=False)
    try:
        yield url, models
    finally:
        demo.close()


def pick(page, name: str, hash_: str) -> None:
    """Choose shipped model `name` in the Draw tab's picker; wait until the page reads with it (its hash)."""
    page.locator("#picker input").click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(SHIPPED[name])} \\(")).click()
    wait_until(page, READS_WITH, hash_, why=lambda: f"the page does not read with {name}")


def run(quick: bool) -> list[Result]:
    """Rows: per update for each model (wall and CPU), updates per second while drawing, pen-down to reading."""
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI"):
            raise RuntimeError(f"this benchmark runs in chromium: {reason}")
        return [Result(NAME, "not run: no chromium", math.nan, "", note=reason)]
    from playwright.sync_api import sync_playwright

    drawings = [json.loads(line)["strokes"] for line in RECORDED.read_text().splitlines()]
    rows = []
    with one_torch_thread(), draw_tab() as (url, models), sync_playwright() as playwright:
        hashes = {name: json.loads(page_reference(PageModels(), models, name, None))["hash"] for name in MODELS}
        browser = launch(playwright)
        try:
            page = new_page(browser, url)
            pad = StrokePad(page)
            pad.wait_until_ready()
            page.evaluate(SETUP, json.dumps(drawings))
            for name in MODELS:
                pick(page, name, hashes[name])
                rows += _per_update(page, name, models.pick(name, None), drawings, quick)
            pick(page, "cnn", hashes["cnn"])
            rows += _while_drawing(page, quick)
            rows += _first_reading(page, pad, quick)
        finally:
            browser.close()
    return rows


def _per_update(page, name: str, checkpoint, drawings: list, quick: bool) -> list[Result]:
    """The wall and CPU time of one reading in the page, against the server's reading in this process."""
    net, decline = checkpoint.model, decline_threshold(checkpoint.metadata)
    page.evaluate(TIME_READS, 1)  # JIT warm-up
    for strokes in drawings[:3]:
        read_strokes(net, strokes, decline)
    page_ms, server_ms = [], []
    for _ in range(ROUNDS[quick]):
        page_ms += page.evaluate(TIME_READS, 1)
        for strokes in drawings:
            start = time.perf_counter()
            reading = read_strokes(net, strokes, decline)
            reading.verdict(), reading.label()
            server_ms.append((time.perf_counter() - start) * 1e3)
    page_stats, server_stats = Stats.of(page_ms), Stats.of(server_ms)
    calls = max(1, math.ceil(CPU_RUN_S[quick] * 1e3 / page_stats.p5))  # each run lasts about CPU_RUN_S
    renderers = renderer_pids()
    before = sum(cpu_seconds(p) for p in renderers)
    page.evaluate(READ_MANY, calls)
    page_cpu = (sum(cpu_seconds(p) for p in renderers) - before) * 1e3 / calls
    server_calls = max(1, math.ceil(CPU_RUN_S[quick] * 1e3 / server_stats.p5))
    start = time.thread_time()
    for i in range(server_calls):
        reading = read_strokes(net, drawings[i % len(drawings)], decline)
        reading.verdict(), reading.label()
    server_cpu = (time.thread_time() - start) * 1e3 / server_calls
    cnn = name == "cnn"
    return [
        Result.timed(
            NAME,
            f"page reading per update, {name}",
            page_stats,
            baseline=server_stats.median,
            baseline_label="server's read_strokes",
            ratio=page_stats.median / server_stats.median,
            target=f"< {TARGET_UPDATE_MS:g} ms" if cnn else "",
            passed=page_stats.median < TARGET_UPDATE_MS if cnn else None,
            note=f"mnistDemo.read on the {len(drawings)} real drawings as strokes: split, 28x28, forward, verdict; "
            f"server: read_strokes + verdict + label in this process, one torch thread, no transport; "
            f"p95 page {page_stats.p95:.2f} ms, server {server_stats.p95:.2f} ms; ratio = page / server",
        ),
        Result(
            NAME,
            f"  page CPU time per update, {name}",
            page_cpu,
            "ms",
            n=calls,
            baseline=server_cpu,
            baseline_label="server CPU",
            ratio=page_cpu / server_cpu,
            target=f"< {TARGET_UPDATE_MS:g} ms" if cnn else "",
            passed=page_cpu < TARGET_UPDATE_MS if cnn else None,
            note=f"the renderer's CPU time (/proc) over {calls} readings in a row, per reading; server: the "
            f"thread's CPU time over {server_calls}; both hardly move with other jobs' load",
        ),
    ]


def _while_drawing(page, quick: bool) -> list[Result]:
    """Readings per second while strokes grow at the frame rate, and the frames kept, against reading off."""
    on, off = [], []
    page.evaluate(REPLAY, [0.5, POINTS_PER_FRAME, True])  # warm-up
    for _ in range(DRAW_TURNS[quick]):
        on.append(page.evaluate(REPLAY, [DRAW_S[quick], POINTS_PER_FRAME, True]))
        off.append(page.evaluate(REPLAY, [DRAW_S[quick], POINTS_PER_FRAME, False]))
    seconds = sum(r["seconds"] for r in on)
    rate = sum(r["readings"] for r in on) / seconds
    fps_on = sum(r["frames"] for r in on) / seconds
    fps_off = sum(r["frames"] for r in off) / sum(r["seconds"] for r in off)
    return [
        Result(
            NAME,
            "page readings per second while drawing, cnn",
            rate,
            "/s",
            n=sum(r["readings"] for r in on),
            target=f">= {TARGET_RATE:g} /s",
            passed=rate >= TARGET_RATE,
            note=f"the real drawings replayed into the pad's 'strokes' events, {POINTS_PER_FRAME} points per "
            f"animation frame, {seconds:.0f} s; a reading per frame at most",
        ),
        Result(
            NAME,
            "  frames per second while drawing, cnn",
            fps_on,
            "/s",
            baseline=fps_off,
            baseline_label="page reading off",
            ratio=fps_on / fps_off,
            note="requestAnimationFrame callbacks per second during the replay, with the page reading and "
            "with it off (mnistDemo.disabled), in turns: what the reading costs the drawing",
        ),
    ]


def _first_reading(page, pad: StrokePad, quick: bool) -> list[Result]:
    """Pen-down to the first page reading and to the server's answer; pen-up to each's reading of the stroke."""
    page.evaluate(WATCH)
    first, server, after_up, server_after_up, sent = [], [], [], [], 0
    for i in range(STROKES[quick] + 1):  # the first is a warm-up
        stroke = digit(DIGITS[i % len(DIGITS)], height=170)[0]
        pad.draw([stroke])
        wait_until(page, "() => window.__trial.server > 0", why=lambda: "the server's answer did not show")
        wait_until(page, "() => window.__trial.last > 0", why=lambda: "no page reading after pen-up")
        t = page.evaluate("() => window.__trial")
        if i:
            first.append(t["first"] - t["down"])
            server.append(t["server"] - t["down"])
            after_up.append(t["last"] - t["up"])
            server_after_up.append(t["server"] - t["up"])
            sent += page.evaluate(SENT_DURING)
        pad.clear()
        wait_until(page, EMPTY, why=lambda: "the panel did not empty after Clear")
        page.wait_for_timeout(CLEAR_SETTLE_MS)  # the server's answer to Clear and its explanation, out of the way
    first_s, server_s = Stats.of(first), Stats.of(server)
    up_s, server_up_s = Stats.of(after_up), Stats.of(server_after_up)
    return [
        Result.timed(
            NAME,
            "pen-down to first reading, page (cnn)",
            first_s,
            baseline=server_s.median,
            baseline_label="server's, after pen-up",
            ratio=first_s.median / server_s.median,
            target="before the server's",
            passed=first_s.median < server_s.median,
            note=f"{len(first)} strokes of testkit digits drawn with the mouse (Playwright, a move per "
            f"25 px) on the app's Draw tab; the server reads on pen-up; requests sent between pen-down and pen-up: "
            f"{sent}; ratio = page / server",
        ),
        Result.timed(
            NAME,
            "  pen-up to the stroke's reading, page (cnn)",
            up_s,
            baseline=server_up_s.median,
            baseline_label="server's answer shown",
            ratio=up_s.median / server_up_s.median,
            note="the first page reading after the pointerup, against the server's answer appearing",
        ),
    ]
