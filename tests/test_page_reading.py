"""The page's reading of strokes against mnist_demo's, in chromium, for every shipped model; and the live reading.

`window.mnistDemo.read(strokes)` (mnist_demo/web/read.js, verdict.js, live.js, with net.js's forward pass)
reads each drawing in the page, all drawings of a set in one call; mnist_demo reads the same strokes with
`split_strokes` and the same torch model (`read_sketches`), both with the checkpoint's "not a digit" rule
(the shipped CNN's the "residual" score, whose subspace travels with the page's weights; the MLPs' the top
probability). The sets: the 34 real drawings re-recorded as strokes (tests/drawings/strokes.ndjson),
testkit's digits at three heights, a few numbers and 24 doodles that are no digit (testkit/nondigits.py),
and MNIST test digits redrawn as strokes (their skeletons traced by testkit/traces.py, placed at random on
the pad), alone and side by side as numbers. Compared: the digits read (the label), each digit's 28 x 28
uint8 input, its ten probabilities, its score under the rule and whether it is declined, the verdict and
the likeliest numbers.

Measured (`python -m pytest -q -s tests/test_page_reading.py -k mnist_demo`, each shipped model on 372
drawings, 455 digits: 92 real and synthetic drawings, 280 of MNIST): the same label on every drawing; the
28 x 28 inputs identical but for one pixel of one synthetic digit, off by 1 of 255 (the centre of mass,
summed in another order, moves that pixel's ink across a rounding boundary it lies 6e-13 from);
probabilities within 1.0e-6 where the inputs are the same (the guide's MLP; 3.0e-7 for the CNN), and
3.7e-5 for the CNN on the digit whose pixel differs; the CNN's residual scores within 1.5e-6 (3.7e-4 on
that digit); the same digits declined (38 by the CNN, 6 and 22 by the MLPs); the same verdicts (among them
5-9 "Not sure", 37-44 "Reads" and 6-36 "That does not look like ...") and the same likeliest numbers. The
bounds below sit just above; a verdict may differ only where a probability lies within
SHIFTED_PROBABILITY_BOUND of the 60% "not sure" line or of a percentage's rounding, or a score within
SCORE_BOUND (SHIFTED_SCORE_BOUND) of the rule's threshold.

The live reading on the harness page (testkit/page_model.py: the stroke pad, the component, and the
server reading on pen-up as the Draw tab): readings while the pen moves with no request to the server
until pen-up, a new model reading the strokes again, the fallback when the page's model is disabled.
Without /usr/bin/chromium these tests skip, except under CI, where they fail.

    python -m pytest -q -s tests/test_page_reading.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.inference import MAX_DIGITS, UNSURE_BELOW, read_sketches
from mnist_demo.reject import decline_threshold, read_for
from mnist_demo.strokes import split_strokes
from testkit.browser import StrokePad, chromium_missing, digit, launch, new_page, number, place, save_evidence, smooth
from testkit.browser import wait_until as wait
from testkit.nondigits import DOODLES, doodle
from testkit.page_model import READS_WITH, RECORD, pick, served_reading
from testkit.sketches import STROKES
from testkit.traces import pad_number, pad_strokes, trace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {p.stem: p for p in sorted((ROOT / "weights").glob("*.safetensors"))}
MNIST_DIGITS = 240  # MNIST test digits redrawn, one per drawing: with the real drawings, over 300 drawings
MNIST_NUMBERS = 40  # ... and numbers of 2 to 4 of them
SEED = 0
LABEL_AGREEMENT = 0.995  # the bar; every drawing agreed when measured (module docstring)
IMAGE_BOUND = 1  # largest difference of one input pixel, of 255
DIFFERING_PIXELS = 1e-4  # share of all input pixels that may differ at all (measured: 1 of 337,904)
PROBABILITY_BOUND = 2e-6  # absolute, for a digit whose 28 x 28 input is the same on both sides
SHIFTED_PROBABILITY_BOUND = 1e-4  # ... and for one whose input differs by a pixel (IMAGE_BOUND)
SCORE_BOUND = 5e-6  # absolute, the "not a digit" rule's score, for a digit whose input is the same
SHIFTED_SCORE_BOUND = 1e-3  # ... and for one whose input differs by a pixel

# Every drawing read in the page, in one call. JSON both ways: Playwright's own serialisation of a few
# hundred thousand numbers costs seconds in Python.
READ_ALL = """(drawings) => JSON.stringify(JSON.parse(drawings).map((d) => { const r = window.mnistDemo.read(d);
  return r && {label: r.label, verdict: r.verdict, numbers: r.numbers, probabilities: r.probabilities, input: r.input,
               features: r.features.map((f) => f.length), hash: r.modelHash,
               scores: r.digits.map((d) => d.score), declined: r.digits.map((d) => d.declined)}; }))"""


def _recorded() -> list:
    lines = (ROOT / "tests" / "drawings" / "strokes.ndjson").read_text().splitlines()
    return [json.loads(line)["strokes"] for line in lines]


def _synthetic() -> list:
    """testkit's digits at three heights, smoothed as a hand draws them, a few numbers, and doodles that are no
    digit (testkit/nondigits.py) at two heights, for the "not a digit" rule."""
    digits = [[smooth(line) for line in place(STROKES[d], height=h)] for d in STROKES for h in (95, 140, 190)]
    doodles = [
        [smooth(line) for line in place(doodle(kind), height=h, aspect=1.0, jitter=2, seed=h)]
        for kind in DOODLES
        for h in (140, 200)
    ]
    return digits + [number(text) for text in ("42", "1745", "90", "386")] + doodles


def _traced(mnist_test) -> list:
    """MNIST test digits redrawn on the pad: MNIST_DIGITS alone, then MNIST_NUMBERS numbers of 2-4 digits."""
    rng = np.random.default_rng(SEED)
    images = mnist_test.images[: MNIST_DIGITS + 4 * MNIST_NUMBERS].numpy()
    traces = [trace(image) for image in images]
    drawings = [pad_strokes(t, rng) for t in traces[:MNIST_DIGITS]]
    rest = iter(traces[MNIST_DIGITS:])
    for _ in range(MNIST_NUMBERS):
        drawings.append(pad_number([next(rest) for _ in range(rng.integers(2, 5))], rng))
    return drawings


@pytest.fixture(scope="module")
def checkpoints():
    return {name: load_checkpoint(path) for name, path in SHIPPED.items()}


@pytest.fixture(scope="module")
def nets(checkpoints):
    return {name: checkpoint.model for name, checkpoint in checkpoints.items()}


@pytest.fixture(scope="module")
def rules(checkpoints):
    """Each shipped model's "not a digit" rule: the page and the harness's server reading apply it."""
    return {name: decline_threshold(checkpoint.metadata) for name, checkpoint in checkpoints.items()}


@pytest.fixture(scope="module")
def site(nets, rules):
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI runs the browser tests and must not skip them")
        pytest.skip(reason)
    with served_reading(nets, initial="cnn", rules=rules) as served:
        yield served


@pytest.fixture(scope="module")
def browser(site, request):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser, site, request):
    """Opens the harness (`query` appended to its URL) in a page of its own; evidence on failure."""
    pages = []
    failures = request.session.testsfailed

    def visit(query: str = ""):
        page = new_page(browser, site[0] + query)
        pages.append(page)
        pad = StrokePad(page)
        pad.wait_until_ready()
        page.evaluate(RECORD)
        return page, pad

    yield visit
    if request.session.testsfailed > failures:
        save_evidence(pages, request.node.name)
    for page in pages:
        page.context.close()


def _boundary(p: float) -> bool:
    """Is probability `p` so near the "not sure" line, or a percentage's rounding, that the page may say otherwise?"""
    rounding = abs(p * 100 - np.floor(p * 100) - 0.5) / 100  # how far from the nearest x.5%
    return abs(p - UNSURE_BELOW) <= SHIFTED_PROBABILITY_BOUND or rounding <= SHIFTED_PROBABILITY_BOUND


DRAWING_SETS = ["recorded and synthetic", pytest.param("MNIST redrawn", marks=pytest.mark.mnist)]


@pytest.fixture(scope="module", params=DRAWING_SETS)
def drawings(request):
    """(name, strokes of each drawing, mnist_demo's sketches of each): a set the page's reading is compared on."""
    if request.param.startswith("MNIST"):
        strokes = _traced(request.getfixturevalue("mnist_test"))
    else:
        strokes = _recorded() + _synthetic()
    return request.param, strokes, [split_strokes(s, limit=MAX_DIGITS) for s in strokes]


@pytest.fixture(scope="module")
def reading_page(browser, site, request):
    """One page for all the comparisons (each picks its model); evidence on failure."""
    page = new_page(browser, site[0])
    failures = request.session.testsfailed
    yield page
    if request.session.testsfailed > failures:
        save_evidence([page], "test_page_reading")
    page.context.close()


@pytest.mark.parametrize("name", list(SHIPPED))
def test_the_page_reads_strokes_as_mnist_demo_does(name, drawings, nets, rules, site, reading_page, one_thread):
    drawings, strokes, sketches = drawings
    page = reading_page
    pick(page, name, site[1][name])
    start = time.perf_counter()
    out = json.loads(page.evaluate(READ_ALL, json.dumps(strokes)))
    seconds = time.perf_counter() - start
    model, rule = nets[name], rules[name]
    agree, digits, pixels, differing, worst_pixel, verdicts = 0, 0, 0, 0, 0, []
    kinds = {"It's": 0, "Not sure": 0, "Reads": 0, "That does not": 0}  # the verdicts compared, by kind
    worst_p = {True: 0.0, False: 0.0}  # by whether the input was the same
    worst_score = {True: 0.0, False: 0.0}  # the rule's score, likewise
    declined = {"page": 0, "mnist_demo": 0, "differing": 0}  # digits declined, and where the two differ
    for found, got in zip(sketches, out, strict=True):
        assert got is not None, "the page had no model to read with"
        assert got["hash"] == site[1][name]
        reading = read_sketches(model, found, rule)  # the server's reading, its rule applied
        if reading is None:
            assert got["label"] == "" and got["verdict"] is None and got["probabilities"] == []
            agree += 1
            continue
        agree += got["label"] == reading.text
        kinds[next(k for k in kinds if reading.verdict().startswith(k))] += 1
        if len(got["input"]) != len(reading.digits):
            continue  # another split: counted as a different label
        with torch.inference_mode():
            scores = rule.scores(*read_for(model, torch.cat([d.sketch.tensor for d in reading.digits]), rule))
        near = False  # some score within the bound of the threshold: the page may decline otherwise
        for guess, image, p, size, score, page_score, page_declined in zip(
            reading.digits,
            got["input"],
            got["probabilities"],
            got["features"],
            scores.tolist(),
            got["scores"],
            got["declined"],
            strict=True,
        ):
            diff = np.abs(np.array(image) - guess.sketch.image.ravel().astype(int))
            digits, pixels, differing = digits + 1, pixels + diff.size, differing + int((diff > 0).sum())
            worst_pixel = max(worst_pixel, int(diff.max()))
            same = not diff.any()
            worst_p[same] = max(worst_p[same], float(np.abs(np.array(p) - guess.probabilities).max()))
            worst_score[same] = max(worst_score[same], abs(page_score - score))
            bound = SCORE_BOUND if same else SHIFTED_SCORE_BOUND
            near = near or abs(score - rule.below) <= bound
            declined["page"] += page_declined
            declined["mnist_demo"] += guess.declined
            if page_declined != guess.declined:
                declined["differing"] += 1
                assert abs(score - rule.below) <= bound, f"declined differently, score {score} off {rule.below}"
            assert size == model_features(model)
        if got["verdict"] != reading.verdict() or [k for k, _ in got["numbers"]] != list(reading.label()):
            explained = near or any(
                _boundary(float(p)) for d in reading.digits for p in (d.confidence, reading.confidence)
            )
            verdicts.append((reading.verdict(), got["verdict"], explained))
    print(
        f"\n{name}, {drawings}: {len(strokes)} drawings, {digits} digits; the same label on {agree}"
        f" ({agree / len(strokes):.2%}); input pixels differing {differing} of {pixels}, by at most {worst_pixel};"
        f" probabilities within {worst_p[True]:.1e} (inputs the same), {worst_p[False]:.1e} (a pixel off);"
        f" {rule.score} scores within {worst_score[True]:.1e}, {worst_score[False]:.1e}; declined {declined};"
        f" verdicts {kinds}, differing {len(verdicts)}; {seconds:.1f} s in the page"
    )
    assert agree >= LABEL_AGREEMENT * len(strokes)
    assert worst_pixel <= IMAGE_BOUND
    assert differing <= DIFFERING_PIXELS * pixels
    assert worst_p[True] <= PROBABILITY_BOUND
    assert worst_p[False] <= SHIFTED_PROBABILITY_BOUND
    assert worst_score[True] <= SCORE_BOUND
    assert worst_score[False] <= SHIFTED_SCORE_BOUND
    assert all(explained for *_, explained in verdicts), f"verdicts differ away from any boundary: {verdicts}"


def model_features(model) -> int:
    """The width of the classifier's input, what the page returns as each digit's features."""
    return model.classifier.in_features if hasattr(model, "classifier") else model.fc2.in_features


def test_read_refuses_garbage_and_reads_an_empty_pad_as_nothing(site, open_page):
    page, _ = open_page()
    wait(page, READS_WITH, site[1]["cnn"], why=lambda: "the page does not read with the CNN")
    error = page.evaluate("() => { try { window.mnistDemo.read([[[1, 'a']]]); } catch (e) { return e.message; } }")
    assert "must be a number" in error
    error = page.evaluate("() => { try { window.mnistDemo.read('7'); } catch (e) { return e.message; } }")
    assert "list of strokes" in error
    empty = page.evaluate("() => window.mnistDemo.read([])")
    assert empty["label"] == "" and empty["verdict"] is None and empty["digits"] == []
    dot = page.evaluate("() => window.mnistDemo.read([[[140, 140]]])")  # a dot is no digit: nothing read
    assert dot["label"] == "" and dot["verdict"] is None


def test_the_page_reads_while_the_pen_moves_and_asks_the_server_only_on_pen_up(site, open_page):
    page, pad = open_page()
    wait(page, READS_WITH, site[1]["cnn"], why=lambda: "the page does not read with the CNN")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    seven = smooth(digit("7", height=170)[0])
    box = pad.canvas.bounding_box()
    mouse = page.mouse
    mouse.move(*pad.to_page(*seven[0], box))
    mouse.down()
    for point in seven[1:]:
        mouse.move(*pad.to_page(*point, box), steps=2)
        page.wait_for_timeout(20)  # a hand's pace: a few frames per point
    wait(page, "() => window.__readings.length >= 3", why=lambda: "fewer than 3 page readings during the stroke")
    during = page.evaluate("() => window.__readings.map((r) => r.probabilities[0])")
    assert requests == [], f"the page asked the server during a stroke: {requests}"
    assert len({json.dumps(p) for p in during if p}) >= 2, "the probabilities did not change during the stroke"
    shown = page.evaluate("() => window.__shown")
    assert shown and all(s["source"] == "page" for s in shown)
    mouse.up()
    wait(page, "() => document.querySelector('#events').innerText.includes('1 answers')", why=lambda: "no answer")
    assert requests, "pen-up sent nothing to the server"
    last = page.evaluate("() => window.__readings[window.__readings.length - 1]")
    assert last["label"] == "7"
    assert page.inner_text("#verdict").startswith("It's a 7")


def test_a_new_model_reads_the_strokes_on_the_pad_again(site, open_page):
    page, pad = open_page()
    wait(page, READS_WITH, site[1]["cnn"], why=lambda: "the page does not read with the CNN")
    pad.draw(digit("4", height=170))
    wait(page, "() => window.__readings.some((r) => r.label === '4')", why=lambda: "the page did not read the 4")
    count = page.evaluate("() => window.__readings.length")
    other = next(name for name in site[1] if name != "cnn")
    pick(page, other, site[1][other])
    wait(
        page,
        "([n, h]) => window.__readings.length > n && window.__readings[window.__readings.length - 1].modelHash === h",
        [count, site[1][other]],
        why=lambda: f"no reading with {other} after it was picked",
    )


def test_with_the_page_model_disabled_the_server_reads_and_nothing_breaks(site, open_page):
    page, pad = open_page("?page_model=off")
    assert page.evaluate("() => window.mnistDemo.disabled") is True
    pad.draw(digit("7", height=170))
    wait(page, "() => document.querySelector('#events').innerText.includes('1 answers')", why=lambda: "no answer")
    assert page.inner_text("#verdict").startswith("It's a 7")
    assert page.evaluate("() => [window.__readings.length, window.mnistDemo.read([[[60, 50], [220, 50]]])]") == [
        0,
        None,
    ]
    page.evaluate("() => { window.mnistDemo.disabled = false; }")  # and back on: the page reads again
    pad.draw([[(100, 60), (100, 220)]])
    wait(page, "() => window.__readings.length > 0", why=lambda: "the page did not read once enabled again")


def test_a_model_that_fails_in_the_page_leaves_the_reading_to_the_server(site, open_page):
    page, pad = open_page()
    wait(page, READS_WITH, site[1]["cnn"], why=lambda: "the page does not read with the CNN")
    page.evaluate("() => { window.mnistDemo.models.current.forward = () => { throw new Error('out of memory'); }; }")
    assert page.evaluate("() => window.mnistDemo.read([[[60, 50], [220, 50], [120, 230]]])") is None
    pad.draw(digit("7", height=170))
    wait(page, "() => document.querySelector('#events').innerText.includes('1 answers')", why=lambda: "no answer")
    assert page.inner_text("#verdict").startswith("It's a 7")
    assert page.evaluate("() => window.__readings.length") == 0
