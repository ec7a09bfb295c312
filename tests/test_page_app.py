"""The reading in the page, in the real app (app.py's demo) in chromium: while the pen moves, after an epoch, off.

- While a stroke is drawn the probabilities change before pen-up, from the page's own model, and the
  page sends the server nothing between pen-down and pen-up (Playwright records every request); on
  pen-up the server's reading arrives, says the same, and replaces the page's without a step back.
- A training run's model reaches the page after each epoch: the page's model hash changes, and the
  drawing left on the pad is read again with it.
- With ?page_model=off the page reads nothing and the server's reading on pen-up is what shows.
- The page's reading equals the server's panel value (verdict, "not a digit" included, numbers, each
  digit's probabilities and input, and the signature of the strokes read) for drawings drawn with the
  mouse, the real drawings re-recorded as strokes, numbers and scribbles that are no digit; the page
  applies the shipped CNN's own "not a digit" rule (the "residual" score: its subspace comes with the
  weights).

tests/test_page_reading.py compares the page with mnist_demo on hundreds of drawings on a small
harness; these tests check the wiring in the app. Without /usr/bin/chromium they skip, except under CI.

    MNIST_ROOT=../shared/data python -m pytest -q tests/test_page_app.py
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mnist_demo.reject import decline_threshold
from testkit.browser import (
    StrokePad,
    digit,
    fill_training,
    new_page,
    number,
    panel,
    save_evidence,
    smooth,
    text_of,
    wait_for_text,
    wait_until,
)
from ui.common import Models
from ui.draw import DrawHandlers
from ui.page_model import PageModels
from ui.reading import DECIMALS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.app]

ROOT = Path(__file__).resolve().parents[1]
# tests/test_page_reading.py's bound where the inputs agree, as they do here, plus the server's rounding
# of the panel's probabilities to DECIMALS places.
PROBABILITY_BOUND = 2e-6 + 0.5 * 10**-DECIMALS
SETTLE_MS = 500  # after the page's pictures have loaded, before a stroke's requests are recorded
# The map's picture comes with the page's first events, after the page itself: wait for it too.
IMAGES_LOADED = "() => !!document.querySelector('#map img') && [...document.images].every((i) => i.complete)"
EPOCH_WAIT_MS = 240_000  # a tiny run's epoch is seconds; a loaded shared machine can take much longer
# Drawn on no digit: the shipped CNN declines each ("That does not look like a digit.").
NOT_DIGITS = {
    "hash": [[(80, 60), (100, 220)], [(160, 60), (180, 220)], [(50, 110), (220, 110)], [(50, 170), (220, 170)]],
    "zigzag": [[(30, 60), (250, 80), (30, 120), (250, 140), (30, 180), (250, 220)]],
}
LOADED = "() => !!(window.mnistDemo && window.mnistDemo.models && window.mnistDemo.models.currentHash)"
# A hash drawn right of centre, small enough to stand beside a digit as a second mark.
NOT_A_NUMBER_PART = [
    [(170, 80), (180, 200)],
    [(220, 80), (230, 200)],
    [(150, 120), (260, 120)],
    [(150, 165), (260, 165)],
]
READS = "() => !!(window.mnistDemo && window.mnistDemo.pageReads && window.mnistDemo.pageReads())"
# Every page reading ('mnist-demo:reading') and every panel render ('reading' on #pred), as they come.
RECORD = """() => { window.__page = []; window.__panel = []; window.__hashes = [];
  window.addEventListener('mnist-demo:reading', (e) => window.__page.push(
    {label: e.detail.label, probabilities: e.detail.probabilities, modelHash: e.detail.modelHash}));
  document.querySelector('#pred').addEventListener('reading', (e) => window.__panel.push(e.detail));
  window.mnistDemo.models.onChange((net) => window.__hashes.push(net && net.hash)); }"""
SERVER_SHOWN = "(n) => window.__panel.filter((p) => p.source === 'server').length > n"
# The page's reading of the pad's strokes now, and their signature, as the panel's value would hold them.
PAGE_VALUE = """() => { const s = window.__pad.strokes, r = window.mnistDemo.read(s);
  return {drawn: window.mnistDemo.panel.signature(s), strokes: s, verdict: r && r.verdict,
          digits: r ? r.digits : [], numbers: r && r.numbers, hash: r && r.modelHash}; }"""


@pytest.fixture
def visit(browser, app_url, request):
    """Opens the app (`query` after its URL) as a new visitor, its pad ready and the readings recorded."""
    pages = []
    failures = request.session.testsfailed

    def open_app(query: str = "", reads: bool = True):
        page = new_page(browser, app_url + query)
        pages.append(page)
        pad = StrokePad(page)
        pad.wait_until_ready()
        # Every component's script has run once the page names its model (before its weights arrive).
        wait_until(page, LOADED, why=lambda: "the page-model component never named a model")
        if reads:
            wait_until(page, READS, why=lambda: "the page never got the shipped CNN to read with")
        page.evaluate(RECORD)
        return page, pad

    yield open_app
    if request.session.testsfailed > failures:
        print(f"\nscreenshots and console logs: {save_evidence(pages, request.node.name)}")
    for page in pages:
        with contextlib.suppress(Exception):  # a run left going would hold the one training slot
            if re.match(r"epoch \d", text_of(page, "#status")):
                page.click("#stop")
        page.context.close()


def served(page) -> int:
    """How many server readings the panel has shown."""
    return page.evaluate("() => window.__panel.filter((p) => p.source === 'server').length")


def test_the_probabilities_move_with_the_pen_and_the_server_hears_only_pen_up(visit):
    page, pad = visit()
    # The page's own loading done first (pictures fetched as they come into view), so that what is
    # recorded is what drawing asks for.
    pad.canvas.scroll_into_view_if_needed()
    wait_until(page, IMAGES_LOADED, why=lambda: "the page's pictures did not finish loading")
    page.wait_for_timeout(SETTLE_MS)
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    seven = smooth(digit("7", height=170)[0])
    box = pad.canvas.bounding_box()
    page.mouse.move(*pad.to_page(*seven[0], box))
    page.mouse.down()
    for point in seven[1:]:
        page.mouse.move(*pad.to_page(*point, box), steps=2)
        page.wait_for_timeout(20)  # a hand's pace: a few frames per point
    wait_until(page, "() => window.__page.length >= 3", why=lambda: "fewer than 3 page readings during the stroke")
    during = page.evaluate("() => window.__page.map((r) => r.probabilities[0])")
    assert len({json.dumps(p) for p in during if p}) >= 2, "the probabilities did not change during the stroke"
    assert panel(page)["source"] == "page", "the panel does not show the page's reading while the pen moves"
    assert requests == [], f"the page asked the server during a stroke: {requests}"
    page.mouse.up()
    wait_until(page, SERVER_SHOWN, 0, why=lambda: f"no server reading after pen-up; the panel: {panel(page)}")
    assert requests, "pen-up sent nothing to the server"
    last = page.evaluate("() => window.__page[window.__page.length - 1]")
    assert last["label"] == "7"
    shown = panel(page)
    assert shown["source"] == "server" and shown["verdict"].startswith("It's a 7")
    # The same content: the page's last verdict is the server's, and no server answer was held back.
    assert page.evaluate("() => window.__panel.filter((p) => p.source === 'page').pop().verdict") == shown["verdict"]
    assert page.evaluate("() => window.mnistDemo.panel.stale") == 0


def test_a_server_answer_to_older_strokes_never_takes_the_panel_back(visit):
    page, pad = visit()
    held, holding = [], [True]  # the server's requests, held back while holding[0]

    def hold(route):
        if holding[0] and route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/gradio_api/**", hold)
    pad.draw(digit("4", height=150, centre=(100, 140)))
    for _ in range(100):  # Playwright hands the route the pen-up's request while the page waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "pen-up sent nothing to the server"
    four = page.evaluate(PAGE_VALUE)["verdict"]
    shown_before = page.evaluate("() => window.__panel.length")
    pad.draw([[(235, 70), (235, 210)]])  # a 1 beside it while the answer to the 4 is on its way
    both = page.evaluate(PAGE_VALUE)["verdict"]
    assert both != four, "the second stroke must change the reading for this test to tell them apart"
    holding[0] = False
    for route in held:  # the answer to the 4 alone arrives now, after the 1 was drawn
        route.continue_()
    wait_until(page, "() => window.mnistDemo.panel.stale > 0", why=lambda: f"no late answer held back: {panel(page)}")
    wait_until(
        page,
        "(v) => document.querySelector('#pred .reading').dataset.source === 'server' && "
        "document.querySelector('#verdict').innerText.trim() === v",
        both,
        why=lambda: f"the server's reading of both strokes did not show: {panel(page)}",
    )
    after = page.evaluate("(n) => window.__panel.slice(n).map((p) => p.source + ': ' + p.verdict)", shown_before)
    assert f"server: {four}" not in after, f"the panel went back to the 4 alone: {after}"


@pytest.mark.mnist
def test_a_trained_models_weights_reach_the_page_after_each_epoch(visit, mnist_train):
    page, pad = visit()
    pad.draw(digit("3", height=170))
    wait_until(page, SERVER_SHOWN, 0, why=lambda: "no server reading of the 3")
    shipped = page.evaluate("() => window.mnistDemo.models.currentHash")
    before = page.evaluate("() => window.__page[window.__page.length - 1]")
    fill_training(page, "CNN", Channels=4, Epochs=2, Training_images=500)  # seconds an epoch
    page.click("#train")
    wait_for_text(page, "#status", r"^done", EPOCH_WAIT_MS)
    hashes = page.evaluate("() => window.__hashes.filter((h) => h)")
    assert len(set(hashes)) >= 2 and shipped not in hashes, f"not a new model per epoch in the page: {hashes}"
    final = hashes[-1]
    wait_until(
        page,
        "(h) => window.__page.length && window.__page[window.__page.length - 1].modelHash === h",
        final,
        why=lambda: "the drawing on the pad was not read again with the trained model",
    )
    after = page.evaluate("() => window.__page[window.__page.length - 1]")
    assert after["probabilities"] != before["probabilities"]
    assert page.evaluate("() => window.mnistDemo.models.currentHash") == final
    # The panel shows the trained model's reading of the pad, whichever side's came last.
    assert panel(page)["verdict"] == page.evaluate(PAGE_VALUE)["verdict"]


def test_with_the_page_model_off_the_server_reads_on_pen_up(visit):
    page, pad = visit("?page_model=off", reads=False)
    assert page.evaluate("() => window.mnistDemo.disabled") is True
    pad.draw(digit("7", height=170))
    wait_until(page, SERVER_SHOWN, 0, why=lambda: f"no server reading; the panel: {panel(page)}")
    shown = panel(page)
    assert shown["source"] == "server" and shown["verdict"].startswith("It's a 7")
    assert page.evaluate("() => [window.__page.length, window.mnistDemo.read([[[60, 50], [220, 50]]])]") == [0, None]


def _same(page_value: dict, server_value: str, what: str) -> None:
    server = json.loads(server_value)
    assert page_value["drawn"] == server["drawn"], what
    assert page_value["verdict"] == server["verdict"], what
    assert len(page_value["digits"]) == len(server["digits"]), what
    for mine, theirs in zip(page_value["digits"], server["digits"]):
        assert mine["input"] == theirs["input"], what
        assert np.abs(np.array(mine["probabilities"]) - theirs["probabilities"]).max() <= PROBABILITY_BOUND, what
    if "numbers" in server:
        assert [t for t, _ in page_value["numbers"]] == [t for t, _ in server["numbers"]], what


def test_the_pages_reading_is_the_servers_in_the_app(visit, app_url):
    page, pad = visit()
    handlers = DrawHandlers(Models.shipped(), page_models=PageModels())  # the app's reading, in this process
    # The page applies the shipped CNN's own rule: its reference's, and a "residual" score's subspace
    # arrived with the weights (the page then computes each digit's residual).
    rule = decline_threshold(handlers.models.pick("cnn", None).metadata)
    ref = page.evaluate("() => window.mnistDemo.models.currentRef")
    assert {k: ref[k] for k in ("decline_below", "decline_score", "decline_weight")} == rule.page()
    assert page.evaluate("() => !!window.mnistDemo.models.current.residual") == (rule.score == "residual")
    drawn = {
        "7": digit("7", height=170),
        "2": digit("2", height=150),
        "42": number("42"),
        "hash": NOT_DIGITS["hash"],
    }
    for name, strokes in drawn.items():
        pad.draw(strokes)
        value = page.evaluate(PAGE_VALUE)
        server_value, _ = handlers.read(json.dumps(value["strokes"]), "cnn", None)
        _same(value, server_value, name)
        pad.clear()
    assert page.evaluate("() => window.__page.some((r) => r.label === '42')")
    # Many more, read in the page without drawing: the real drawings as strokes, numbers, no digits.
    lines = (ROOT / "tests" / "drawings" / "strokes.ndjson").read_text().splitlines()
    more = [json.loads(line)["strokes"] for line in lines] + [number("1745")] + list(NOT_DIGITS.values())
    more.append(digit("4", height=120, centre=(70, 140)) + NOT_A_NUMBER_PART)  # a 4 beside a hash: no number
    values = page.evaluate(
        """(drawings) => drawings.map((s) => { const r = window.mnistDemo.read(s);
          return {drawn: window.mnistDemo.panel.signature(s), verdict: r.verdict, digits: r.digits,
                  numbers: r.numbers}; })""",
        more,
    )
    declined = 0
    for i, (strokes, value) in enumerate(zip(more, values, strict=True)):
        server_value, _ = handlers.read(json.dumps(strokes), "cnn", None)
        _same(value, server_value, f"drawing {i}")
        declined += value["verdict"] == "That does not look like a digit."
    assert declined == len(NOT_DIGITS)
    assert values[-1]["verdict"] == "That does not look like a number: some of it is no digit."
