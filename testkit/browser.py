"""Driving the app in Debian's chromium with Playwright: launch it, draw digits as strokes, wait for answers.

Shared by tests/test_browser.py, the benchmarks and the scripts that draw in a real page
(scripts/screenshots.py, scripts/capture_drawings.py). Drawings are polylines in the pad's canvas pixels
(0 .. 280, x right, y down). `StrokePad` draws on the app's stroke pad with the mouse or a finger; `Pad`
on a gr.Sketchpad (the benchmark's baseline), mapped to the page with the zoom its toolbar shows, as
/work/shared/docs/gradio-6.md §4 describes. Never `playwright install`: Playwright drives the system's
chromium.

    python -m pytest -m browser
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from testkit.sketches import ASPECT, STROKES

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; CI installs it (.ci/run)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}
WAIT_MS = 30_000  # every wait: a stroke takes well under 1 s to come back, several on 2 busy cores
CANVAS = 280  # mnist_demo.strokes.PAD_SIDE, repeated so that importing this module imports no torch
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"  # screenshots and logs of failed browser tests
# A drag sends a pointer event about every this many pixels. The brush joins them with straight lines, so
# more would not change the picture, and each costs ~0.3 s in headless chromium on a busy 2-core box.
PX_PER_STEP = 25

Point = tuple[float, float]
Stroke = list[Point]


def wait_until(page, script: str, arg=None, why=lambda: "", timeout: float = WAIT_MS, polling: int = 100) -> None:
    """`page.wait_for_function`, failing with an AssertionError that says `why()` instead of a bare timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # lazy: a missing playwright only skips

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout, polling=polling)
    except PlaywrightTimeout:
        raise AssertionError(f"after {timeout / 1000:.0f} s: {why()}") from None


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return f"Debian's chromium is not at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def launch(playwright):
    """Headless system chromium; Playwright's own browser download is never used."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def new_page(browser, url: str | None = None, viewport: dict = VIEWPORT, **options):
    """A page in a context of its own (another visitor: its own cookies, session and gr.State), console recorded.

    The console lines are kept in `page.console_lines` for `save_evidence`; `options` go to the context
    (`has_touch=True` for a phone, say).
    """
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.console_lines = []
    start = time.monotonic()
    page.on("console", lambda m: page.console_lines.append(f"{time.monotonic() - start:7.2f} {m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.console_lines.append(f"{time.monotonic() - start:7.2f} pageerror: {e}"))
    if url is not None:
        page.goto(url)
    return page


def save_evidence(pages: Sequence, name: str) -> Path:
    """Screenshot and console log of each page under test-output/`name`/; the folder."""
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, page in enumerate(pages, 1):
        try:
            page.screenshot(path=folder / f"page{i}.png", full_page=True)
        except Exception as err:  # a crashed page must not hide the test's own failure
            (folder / f"page{i}.png.txt").write_text(f"no screenshot: {err}\n")
        lines = getattr(page, "console_lines", [])
        (folder / f"page{i}-console.log").write_text(f"{page.url}\n" + "\n".join(lines) + "\n")
    return folder


# --------------------------------------------------------------------------------------------------
# Digits as strokes in canvas pixels


def place(
    strokes: list[Stroke],
    height: float = 170,
    centre: Point = (CANVAS / 2, CANVAS / 2),
    slant: float = 0.0,
    aspect: float = ASPECT,
    jitter: float = 0.0,
    seed: int = 0,
) -> list[Stroke]:
    """Unit-box strokes (testkit/sketches.py) -> canvas pixels.

    `height` px tall and `aspect` times as wide, centred on `centre`; `slant` leans the top right by that
    share of the height; `jitter` moves every point by up to that many pixels, as a hand does.
    """
    rng = np.random.default_rng(seed)
    width = aspect * height
    placed = []
    for line in strokes:
        points = []
        for x, y in line:
            dx, dy = rng.uniform(-jitter, jitter, 2) if jitter else (0.0, 0.0)
            points.append(
                (centre[0] + (x - 0.5) * width + slant * (0.5 - y) * height + dx, centre[1] + (y - 0.5) * height + dy)
            )
        placed.append(points)
    return placed


def smooth(line: Stroke, between: int = 2) -> Stroke:
    """The polyline through the same points as a Catmull-Rom curve, `between` points added per segment."""
    if len(line) < 3 or between < 1:
        return list(line)
    closed = math.dist(line[0], line[-1]) < 1e-6  # a 0: the curve goes round the start without a kink
    ends = (line[-2], line[1]) if closed else (line[0], line[-1])
    padded = [ends[0], *line, ends[1]]
    out = [line[0]]
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:]):
        for k in range(1, between + 2):
            t = k / (between + 1)
            out.append(
                tuple(
                    0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (3 * b - a - 3 * c + d) * t**3)
                    for a, b, c, d in zip(p0, p1, p2, p3)
                )
            )
    return out


def digit(text: str, **style) -> list[Stroke]:
    """One digit of testkit/sketches.py's STROKES in canvas pixels; `style` as for `place`."""
    return place(STROKES[text], **style)


def number(text: str, height: float = 110, gap: float = 25, centre: Point = (CANVAS / 2, CANVAS / 2)) -> list[Stroke]:
    """Several digits side by side, `gap` px of paper between them, the whole number centred on `centre`."""
    width = ASPECT * height
    left = centre[0] - (len(text) * width + (len(text) - 1) * gap) / 2
    return [
        line
        for i, d in enumerate(text)
        for line in digit(d, height=height, centre=(left + width / 2 + i * (width + gap), centre[1]))
    ]


# --------------------------------------------------------------------------------------------------
# The Sketchpad

# True once the brush is the active tool: highlighted, and the "select the draw tool" hint is gone.
_BRUSH_SELECTED = """(sel) => { const pad = document.querySelector(sel);
  const b = pad && pad.querySelector('button[aria-label="Brush"]');
  return !!b && b.classList.contains('highlight') && !pad.innerText.includes('select the draw tool'); }"""
# Notes in window.__padCleared when the Sketchpad shows its empty, tool-less state, however briefly.
_WATCH_CLEAR = """(sel) => { const pad = document.querySelector(sel); window.__padCleared = false;
  const seen = () => { if (pad.innerText.includes('select the draw tool')) { window.__padCleared = true; return true; }
                       return false; };
  const watch = new MutationObserver(() => { if (seen()) watch.disconnect(); });
  watch.observe(pad, {subtree: true, childList: true, characterData: true, attributes: true}); }"""


class Pad:
    """A gr.Sketchpad on a page, drawn on with the mouse like a visitor would."""

    def __init__(self, page, selector: str = "#pad", size: int = CANVAS):
        self.page, self.selector, self.size = page, selector, size

    def wait_until_ready(self) -> None:
        """Wait until the brush is selected; the app's PICK_BRUSH does it on load and after Clear, never the test."""
        self.page.locator(f"{self.selector} canvas").first.wait_for()
        wait_until(
            self.page,
            _BRUSH_SELECTED,
            self.selector,
            lambda: f"the brush of {self.selector} is not selected (the app selects it on load and after Clear)",
        )

    def zoom(self) -> float:
        """The zoom the toolbar shows, as a factor ("103%" -> 1.03); Clear resets it."""
        return float(self.page.inner_text(f"{self.selector} .zoom-number").strip().rstrip("%")) / 100

    def to_page(self, u: float, v: float, box: dict | None = None, zoom: float | None = None) -> Point:
        """Image pixel (u, v) -> page coordinates: the image sits centred in the drawing canvas, scaled by the zoom."""
        box = box or self.page.locator(f"{self.selector} canvas").first.bounding_box()
        zoom = zoom or self.zoom()
        return (
            box["x"] + box["width"] / 2 + (u - self.size / 2) * zoom,
            box["y"] + box["height"] / 2 + (v - self.size / 2) * zoom,
        )

    def draw(self, strokes: list[Stroke]) -> None:
        """Each stroke as one press, drag and release, as a visitor draws; needs the brush (`wait_until_ready`)."""
        self.wait_until_ready()
        box = self.page.locator(f"{self.selector} canvas").first.bounding_box()
        zoom = self.zoom()
        mouse = self.page.mouse
        for line in strokes:
            mouse.move(*self.to_page(*line[0], box, zoom))
            mouse.down()
            for a, b in zip(line, line[1:]):
                steps = max(1, math.ceil(math.dist(a, b) / PX_PER_STEP))
                mouse.move(*self.to_page(*b, box, zoom), steps=steps)
            mouse.up()

    def clear(self) -> None:
        """Press the toolbar's trash can and wait until the app has picked the brush again by itself."""
        self.page.evaluate(_WATCH_CLEAR, self.selector)
        self.page.click(f'{self.selector} button[aria-label="Clear canvas"]')
        wait_until(self.page, "() => window.__padCleared", why=lambda: "Clear did not empty the Sketchpad", polling=50)
        self.wait_until_ready()


# --------------------------------------------------------------------------------------------------
# The stroke pad (ui/pad.py, mnist_demo/web/pad.js)

# Keeps what the pad's 'strokes' events say in window.__pad: the strokes (copied) and how many events came.
_LISTEN = """(sel) => { const pad = document.querySelector(sel);
  window.__pad = {strokes: null, drawing: false, events: 0};
  pad.addEventListener('strokes', (e) => { window.__pad = {
    strokes: e.detail.strokes.map((s) => s.map((p) => p.slice())),
    drawing: e.detail.drawing, events: window.__pad.events + 1}; }); }"""


class StrokePad:
    """The stroke pad on a page, drawn on with the mouse or a finger like a visitor would.

    Strokes are in the pad's canvas pixels (0 .. 280, x right, y down) whatever its size on screen.
    """

    def __init__(self, page, selector: str = "#pad", size: int = CANVAS):
        self.page, self.selector, self.size = page, selector, size
        self.canvas = page.locator(f"{selector} canvas").first

    def wait_until_ready(self) -> None:
        """Wait until the canvas is laid out and the pad's script has run; listen to its 'strokes' events."""
        self.canvas.wait_for()
        wait_until(
            self.page,
            "(sel) => { const c = document.querySelector(sel + ' canvas'); return !!c && c.width > 0 "
            "&& c.getBoundingClientRect().width > 0 && !!document.querySelector(sel + ' .pad-hint'); }",
            self.selector,
            lambda: f"the stroke pad {self.selector} did not appear",
        )
        self.page.evaluate(_LISTEN, self.selector)

    def to_page(self, u: float, v: float, box: dict | None = None) -> Point:
        """Canvas pixel (u, v) -> page coordinates: the canvas fills its box, scaled to its CSS size."""
        box = box or self.canvas.bounding_box()
        return box["x"] + u * box["width"] / self.size, box["y"] + v * box["height"] / self.size

    def draw(self, strokes: list[Stroke]) -> None:
        """Each stroke as one press, drag and release of the mouse (the pad scrolled into view first: the mouse
        only reaches what is on screen)."""
        self.canvas.scroll_into_view_if_needed()
        box = self.canvas.bounding_box()
        mouse = self.page.mouse
        for line in strokes:
            mouse.move(*self.to_page(*line[0], box))
            mouse.down()
            for a, b in zip(line, line[1:]):
                mouse.move(*self.to_page(*b, box), steps=max(1, math.ceil(math.dist(a, b) / PX_PER_STEP)))
            mouse.up()

    def touch(self, strokes: list[Stroke]) -> None:
        """Each stroke as one finger put down, dragged and lifted (chromium's touch input, through CDP).

        The page needs a context with `has_touch=True`. Moves are sent every PX_PER_STEP canvas pixels.
        """
        self.canvas.scroll_into_view_if_needed()
        box = self.canvas.bounding_box()
        cdp = self.page.context.new_cdp_session(self.page)
        try:
            for line in strokes:
                path = [line[0]]
                for a, b in zip(line, line[1:]):
                    steps = max(1, math.ceil(math.dist(a, b) / PX_PER_STEP))
                    path += [
                        (a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
                        for k in range(1, steps + 1)
                    ]
                for i, (u, v) in enumerate(path):
                    x, y = self.to_page(u, v, box)
                    kind = "touchStart" if i == 0 else "touchMove"
                    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y, "id": 1}]})
                cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        finally:
            cdp.detach()

    def undo(self) -> None:
        self.page.click(f"{self.selector} .pad-undo")

    def clear(self) -> None:
        self.page.click(f"{self.selector} .pad-clear")

    def strokes(self) -> list | None:
        """The strokes the pad announced last (its 'strokes' event), None before any."""
        return self.page.evaluate("() => window.__pad.strokes")

    def wait_for_strokes(self, count: int) -> list:
        """Wait until the pad holds `count` strokes, the pen up; those strokes."""
        wait_until(
            self.page,
            "(n) => !!window.__pad.strokes && window.__pad.strokes.length === n && !window.__pad.drawing",
            count,
            lambda: f"the pad holds {len(self.strokes() or [])} strokes, not {count}",
            polling=50,
        )
        return self.strokes()


# --------------------------------------------------------------------------------------------------
# The app's outputs

EMPTY_VERDICT = "Draw a digit"


def text_of(page, selector: str) -> str:
    """Visible text of an element, or its value for a textbox."""
    if page.locator(f"{selector} textarea").count():
        return page.input_value(f"{selector} textarea")
    return page.inner_text(selector).strip()


def wait_for_text(page, selector: str, pattern: str, timeout: float = WAIT_MS) -> str:
    """Wait until `selector`'s text (a textbox's value) matches the regex `pattern`; that text.

    Fails with what the element showed instead, so a wrong answer reads as one, not as a bare timeout.
    """
    script = """([sel, pat]) => { const e = document.querySelector(sel); if (!e) return false;
      const t = e.querySelector('textarea'); return new RegExp(pat).test(t ? t.value : e.innerText); }"""
    wait_until(
        page,
        script,
        [selector, pattern],
        timeout=timeout,
        why=lambda: (
            f"{selector} does not match /{pattern}/; it shows {text_of(page, selector)!r}"
            if page.locator(selector).count()
            else f"there is no {selector}"
        ),
    )
    return text_of(page, selector)


def reading_pattern(text: str) -> str:
    """The verdict for a sure reading of `text`: "It's a 7 (98% sure).", "It's an 8 ..." or "Reads 42 (90% sure)."."""
    return rf"^It's an? {text} \(" if len(text) == 1 else rf"^Reads {text} \("


# The reading panel (ui/reading.py): its bars, top one first in the list's order, and its 28 x 28 views.
_PANEL = """() => { const p = document.querySelector('#pred');
  const rows = [...p.querySelectorAll('.reading-bars li')].filter(li => !li.hidden);
  return {verdict: p.querySelector('#verdict').innerText.trim(),
          empty: p.querySelector('.reading').classList.contains('is-empty'),
          source: p.querySelector('.reading').dataset.source,
          bars: rows.map(li => [li.querySelector('.bar-label').innerText, li.querySelector('.bar-value').innerText]),
          top: (p.querySelector('.reading-bars li.top .bar-label') || {}).innerText || null,
          views: [...p.querySelectorAll('.reading-view')].filter(v => !v.hidden).length}; }"""


def panel(page) -> dict:
    """What the reading panel shows: verdict, empty or not, source, bars [(label, percent)], top bar, views."""
    return page.evaluate(_PANEL)


def wait_for_reading(page, text: str) -> str:
    """Wait until the verdict says the drawing reads `text`, its bar is the top one and its input is shown."""
    verdict = wait_for_text(page, "#verdict", reading_pattern(text))
    wait_until(
        page,
        f"() => ({_PANEL})().top === {text!r} && ({_PANEL})().views === {len(text)}",
        why=lambda: f"the panel does not show {text!r} as the top bar with its input: {panel(page)}",
    )
    return verdict


def wait_for_empty(page) -> None:
    """Wait for the app's empty state: "Draw a digit", no bars, no inputs, no explanation."""
    wait_for_text(page, "#verdict", rf"^{EMPTY_VERDICT}$")
    wait_until(
        page,
        f"() => ({_PANEL})().empty && !document.querySelector('#why img')",
        why=lambda: f"the panel or the explanation still shows the last drawing: {panel(page)}",
    )


def fill_training(page, model: str = "CNN", **sliders: int) -> None:
    """Open the Train tab and set its form: the model radio, then sliders by label (`Training_images=...`)."""
    page.get_by_role("tab", name="Train", exact=True).click()
    page.get_by_role("radio", name=model, exact=True).check()
    for key, value in sliders.items():
        label = key.replace("_", " ")
        field = page.get_by_label(re.compile(f"^number input for {label}"))
        field.fill(str(value))
        field.press("Enter")  # the slider takes the typed number
        slider = page.get_by_label(re.compile(f"^range slider for {label}"))
        assert slider.input_value() == str(value), f"{label}: {slider.input_value()} instead of {value}"


# Vega draws a LinePlot as an svg (gradio 6.31) or a canvas: true once one holds a line through several points.
_PLOT_DRAWN = """(sel) => { const root = document.querySelector(sel); if (!root) return false;
  const line = [...root.querySelectorAll('svg .mark-line path')]
    .some(p => ((p.getAttribute('d') || '').match(/[LC]/g) || []).length >= 2);
  if (line) return true;
  for (const c of root.querySelectorAll('canvas')) {
    if (!c.width || !c.height) continue;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0; for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
    if (ink > 500) return true; }
  return false; }"""


# ... and a ScatterPlot as svg symbols: true once it holds one.
_POINTS_DRAWN = """(sel) => !!document.querySelector(sel + ' svg .mark-symbol path')"""


def wait_for_plot(page, selector: str) -> None:
    """Wait until Vega has drawn the LinePlot `selector` with a line in it."""
    wait_until(page, _PLOT_DRAWN, selector, lambda: f"no line drawn in the plot {selector}", polling=200)


def wait_for_points(page, selector: str) -> None:
    """Wait until Vega has drawn the ScatterPlot `selector` with a point in it."""
    wait_until(page, _POINTS_DRAWN, selector, lambda: f"no point drawn in the plot {selector}", polling=200)
