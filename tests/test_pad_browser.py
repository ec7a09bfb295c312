"""The stroke pad alone in a real browser: mouse and touch drawing, Undo, Ctrl+Z, Clear, strokes from Python.

A tiny app (testkit/pad_apps.py) holds the pad and a Label whose handler reads the strokes with
mnist_demo.strokes and the shipped CNN. Debian's chromium, driven by Playwright, draws with the mouse, and
with a finger on a phone-sized page (chromium's touch input through CDP). Without /usr/bin/chromium these
tests skip, except under CI, where they fail. A failing test leaves screenshots and console logs in
test-output/<test name>/.

    python -m pytest tests/test_pad_browser.py
"""

from __future__ import annotations

import contextlib
import json
import math

import pytest

from mnist_demo.strokes import PAD_SIDE
from testkit.browser import (
    StrokePad,
    digit,
    new_page,
    save_evidence,
    text_of,
    wait_for_text,
    wait_until,
)
from testkit.pad_apps import launch as serve
from testkit.pad_apps import stroke_pad_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}  # an iPhone 12-14's viewport in CSS pixels
SEVEN = digit("7", height=170)
ONE = digit("1", height=170)
ONE_UPWARD = [ONE[0][::-1]]  # drawn bottom to top: a finger moving up would scroll the page down
FOUR = digit("4", height=170)  # two strokes


@pytest.fixture(scope="module")
def url():
    demo = stroke_pad_app(example=SEVEN)
    try:
        yield serve(demo)
    finally:
        demo.close()


@pytest.fixture
def visit(browser, url, request):
    """Opens the app in a context of its own (`options` for it: a phone's), the pad ready; evidence on failure."""
    pages = []
    failures_before = request.session.testsfailed

    def open_app(path: str = "", **options):
        page = new_page(browser, url + path, **options)
        pages.append(page)
        pad = StrokePad(page)
        pad.wait_until_ready()
        return page, pad

    yield open_app
    if request.session.testsfailed > failures_before:
        print(f"\nscreenshots and console logs: {save_evidence(pages, request.node.name)}")
    for page in pages:
        with contextlib.suppress(Exception):
            page.context.close()


def answers(page) -> int:
    """How many answers the server has sent (the app counts them in #events)."""
    return int(text_of(page, "#events").split()[0])


def wait_for_label(page, text: str) -> None:
    wait_for_text(page, '#pred [data-testid="label-output-value"]', rf"^{text}$")


def wait_for_answers(page, count: int) -> None:
    wait_for_text(page, "#events", rf"^{count} answers")


def hint_shown(page) -> bool:
    return page.locator("#pad .pad-hint").is_visible()


def assert_close_to(received: list, drawn: list, tolerance: float = 1.5, timed: bool = True) -> None:
    """The pad's strokes start and end where they were drawn (canvas pixels); drawn ones carry their times
    in ms from pen-down."""
    assert len(received) == len(drawn)
    for got, line in zip(received, drawn, strict=True):
        assert math.dist(got[0][:2], line[0]) <= tolerance and math.dist(got[-1][:2], line[-1]) <= tolerance
        assert all(0 <= v <= PAD_SIDE for p in got for v in p[:2])
        if timed:
            times = [p[2] for p in got]
            assert times[0] == 0 and times == sorted(times) and all(isinstance(t, int) for t in times)


def test_mouse_draws_a_one_then_a_seven(visit):
    page, pad = visit()
    assert hint_shown(page)
    pad.draw(ONE)
    assert_close_to(pad.wait_for_strokes(1), ONE)
    wait_for_label(page, "1")
    assert not hint_shown(page)
    pad.clear()
    assert pad.wait_for_strokes(0) == [] and hint_shown(page)
    wait_until(
        page,
        """() => !document.querySelector('#pred [data-testid="label-output-value"]')""",
        why=lambda: "Clear left the last reading in the Label",
    )
    pad.draw(SEVEN)
    assert_close_to(pad.wait_for_strokes(1), SEVEN)
    wait_for_label(page, "7")
    assert answers(page) == 3  # one per pen-up and one for Clear: never two for one change


def test_undo_button_and_ctrl_z_take_back_the_last_stroke(visit):
    page, pad = visit()
    pad.draw(FOUR)
    assert_close_to(pad.wait_for_strokes(2), FOUR)
    wait_for_label(page, "4")
    pad.undo()
    assert_close_to(pad.wait_for_strokes(1), FOUR[:1])
    wait_for_answers(page, 3)
    pad.draw(FOUR[1:])
    pad.wait_for_strokes(2)
    wait_for_label(page, "4")
    page.keyboard.press("Control+z")  # the pad has focus since the pen touched it
    assert_close_to(pad.wait_for_strokes(1), FOUR[:1])
    wait_for_answers(page, 5)
    page.keyboard.press("Meta+z")  # Cmd+Z on a Mac
    assert pad.wait_for_strokes(0) == [] and hint_shown(page)
    wait_for_answers(page, 6)
    assert page.locator("#pad .pad-undo").is_disabled()  # nothing left to undo


def test_strokes_from_python_are_shown_and_read(visit):
    page, pad = visit()
    page.click("#example")  # the server sets the pad's value to a 7's strokes
    assert_close_to(pad.wait_for_strokes(1), SEVEN, tolerance=0.01, timed=False)
    wait_for_label(page, "7")
    assert not hint_shown(page)
    ink = page.evaluate(
        """() => { const c = document.querySelector('#pad canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 128) n++; return n / (c.width * c.height); }"""
    )
    assert 0.03 < ink < 0.3, f"the pad shows {ink:.1%} ink for a 7"
    pad.undo()  # and it can be undone like a stroke drawn
    assert pad.wait_for_strokes(0) == []


def _scroll_y(page) -> float:
    return page.evaluate("() => window.scrollY")


def test_a_finger_draws_on_a_phone_without_scrolling_the_page(visit):
    page, pad = visit(viewport=PHONE, has_touch=True, is_mobile=True)
    # Room to scroll both ways, with the pad in the middle of the screen.
    page.evaluate("() => { document.body.style.paddingTop = '1500px'; document.body.style.paddingBottom = '3000px'; }")
    page.locator("#pad canvas").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, -200)")
    box = page.locator("#pad canvas").bounding_box()
    assert box["width"] < PAD_SIDE + 100 and box["y"] > 0 and box["y"] + box["height"] < PHONE["height"]
    before = _scroll_y(page)
    assert before > 0
    pad.touch(ONE_UPWARD)
    assert_close_to(pad.wait_for_strokes(1), ONE_UPWARD)
    wait_for_label(page, "1")
    pad.clear()
    pad.wait_for_strokes(0)
    pad.touch(SEVEN)
    assert_close_to(pad.wait_for_strokes(1), SEVEN)
    wait_for_label(page, "7")
    assert _scroll_y(page) == before, "drawing with a finger scrolled the page"
    # The check can fail: the same drag on a canvas that lets the browser pan does scroll the page.
    page.evaluate("() => { document.querySelector('#pad canvas').style.touchAction = 'auto'; }")
    pad.touch(ONE_UPWARD)
    wait_until(page, "(y) => window.scrollY !== y", before, lambda: "a finger drag did not scroll even a pannable page")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_paper_has_a_visible_edge(visit, theme):
    page, _ = visit(f"?__theme={theme}")
    colours = page.evaluate(
        """() => { const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const paper = document.querySelector('#pad .pad-paper');
        let back = document.body; let fill = getComputedStyle(back).backgroundColor;
        for (let e = paper.parentElement; e; e = e.parentElement) {
          const c = getComputedStyle(e).backgroundColor;
          if (!c.includes('rgba(0, 0, 0, 0)') && c !== 'transparent') { fill = c; break; } }
        return {edge: rgb(getComputedStyle(paper).borderTopColor), page: rgb(fill),
                dark: document.body.classList.contains('dark') || !!document.querySelector('.dark')}; }"""
    )
    assert colours["dark"] == (theme == "dark"), json.dumps(colours)
    luminance = [sum(c) / 3 for c in (colours["edge"], colours["page"])]
    assert abs(luminance[0] - luminance[1]) >= 60, json.dumps(colours)  # the border stands out from the page
    assert abs(luminance[0] - 255) >= 60, json.dumps(colours)  # ... and from the white paper
