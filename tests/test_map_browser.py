"""The map of digits in a real browser: a drawing lands on it among its neighbours, the page's own readings
move a marker exactly where Python's projection puts them (mnist_demo/web/map.js against mnist_demo),
a click shows a digit, and a short training run redraws the map and the first layer every epoch, replays
them, and opens a confusion cell onto its digits. The Guide's links open these sections.

Without /usr/bin/chromium these tests skip, except under CI, where they fail. A failing test leaves
screenshots and console logs in test-output/<test name>/.

    MNIST_ROOT=../shared/data python -m pytest tests/test_map_browser.py
"""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
import torch

from testkit.browser import (
    StrokePad,
    digit,
    fill_training,
    new_page,
    save_evidence,
    text_of,
    wait_for_reading,
    wait_for_text,
    wait_until,
)

TRAIN_WAIT_MS = 240_000  # a 2-epoch run of a 4-channel CNN on 1,000 images, on a busy machine


@pytest.fixture
def page(browser, app_url, request):
    """The app as a new visitor, ready to draw; screenshots and console logs kept when the test fails."""
    failures_before = request.session.testsfailed
    visitor = new_page(browser, app_url)
    StrokePad(visitor).wait_until_ready()
    yield visitor
    if request.session.testsfailed > failures_before:
        print(f"\nscreenshots and console logs: {save_evidence([visitor], request.node.name)}")
    with contextlib.suppress(Exception):  # a run left going would hold the one training slot
        if re.match(r"epoch \d", text_of(visitor, "#status")):
            visitor.click("#stop")
    visitor.context.close()


def draw_digit(page, text: str) -> None:
    """Draw `text` on the Draw tab's pad the way a visitor does (the one step that depends on the pad)."""
    StrokePad(page).draw(digit(text, height=180))


def picture_src(page, selector: str) -> str:
    """The src of the picture in `selector`, once it has one."""
    page.locator(f"{selector} img").first.wait_for()
    return page.locator(f"{selector} img").first.get_attribute("src")


def wait_for_new_picture(page, selector: str, old: str) -> str:
    wait_until(
        page,
        "([sel, old]) => { const i = document.querySelector(sel + ' img'); return !!i && i.src !== old && i.complete }",
        [selector, old],
        lambda: f"the picture in {selector} did not change",
    )
    return picture_src(page, selector)


# Where the content of the picture in #map is on the page: pixel (0, 0)'s corner and screen px per pixel.
_PICTURE_BOX = """() => { const img = document.querySelector('#map img'); const b = img.getBoundingClientRect();
  const nw = img.naturalWidth, nh = img.naturalHeight;
  if (getComputedStyle(img).objectFit === 'contain') { const s = Math.min(b.width / nw, b.height / nh);
    return {left: b.left + (b.width - nw * s) / 2, top: b.top + (b.height - nh * s) / 2, sx: s, sy: s}; }
  return {left: b.left, top: b.top, sx: b.width / nw, sy: b.height / nh}; }"""


def page_reading(page, features, model_hash) -> dict | None:
    """Dispatch a reading as the page's own reader does; where map.js placed it."""
    return page.evaluate(
        """([features, modelHash]) => {
      window.dispatchEvent(new CustomEvent('mnist-demo:reading', {detail: {
        features: features && Float32Array.from(features), modelHash, label: null, probabilities: null, input: null}}));
      return window.mnistDemo.map.last; }""",
        [features, model_hash],
    )


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.mnist
def test_a_drawing_on_the_map_and_the_pages_own_readings(page, mnist_test):
    from mnist_demo import mapview
    from mnist_demo.atlas import atlas_for
    from mnist_demo.charts import MAP_SIDE, MARK
    from mnist_demo.features import digit_features
    from mnist_demo.reject import decline_threshold
    from ui.common import Models

    checkpoint = Models.shipped().pick("cnn", None)  # the picked model: the same weights as the app's
    model, rule = checkpoint.model, decline_threshold(checkpoint.metadata)
    atlas = atlas_for(model)
    layout, model_hash = mapview.layout_of(atlas), mapview.page_hash(model, rule.page_subspace)

    loaded = picture_src(page, "#map")  # the picked model's map, before anything is drawn
    draw_digit(page, "7")
    wait_for_reading(page, "7")
    wait_for_new_picture(page, "#map", loaded)
    wait_for_text(page, "#map-sentence", r"Your drawing sits (mostly )?among 7s")
    wait_until(page, "() => document.querySelectorAll('#map-neighbours img').length === 5", why=lambda: "no 5 tiles")
    # The map names the model by the hash the page's own copy has (its "not a digit" subspace included).
    assert page.evaluate("() => window.mnistDemo.models.currentHash") == model_hash

    # The page's readings: map.js puts them where Python's projection and axes do, to a hundredth of a pixel.
    for i in (0, 1, 2, 7):
        feats = digit_features(model, mnist_test.images[i : i + 1])[0]
        expected = np.clip(layout.to_pixels(atlas.place(feats[None]))[0], MARK, MAP_SIDE - 1 - MARK)
        placed = page_reading(page, feats.tolist(), model_hash)
        assert placed["shown"] and np.allclose([placed["x"], placed["y"]], expected, atol=0.01), (placed, expected)
        box = page.evaluate(_PICTURE_BOX)
        ring = page.locator("#map .map-live-marker").bounding_box()
        on_picture = (
            (ring["x"] + ring["width"] / 2 - box["left"]) / box["sx"] - 0.5,
            (ring["y"] + ring["height"] / 2 - box["top"]) / box["sy"] - 0.5,
        )
        assert np.allclose(on_picture, expected, atol=1.0), (on_picture, expected)  # the ring, on screen
    before = page.evaluate("window.mnistDemo.map.last")
    assert page_reading(page, torch.zeros(len(atlas.projection.mean)).tolist(), "another-model") == before  # ignored
    assert page_reading(page, None, model_hash) is None  # the pad was cleared
    assert not page.locator("#map .map-live-marker").is_visible()

    # Clicking a dot shows that digit.
    pixels = layout.to_pixels(atlas.points)
    gaps = np.hypot(*(pixels[:, None] - pixels[None]).transpose(2, 0, 1)) + np.eye(len(pixels)) * 1e9
    lonely = int(gaps.min(1).argmax())
    page.locator("#map img").scroll_into_view_if_needed()  # the mouse only reaches what is on screen
    box = page.evaluate(_PICTURE_BOX)
    x, y = pixels[lonely] + 0.5
    page.mouse.click(box["left"] + x * box["sx"], box["top"] + y * box["sy"])
    label, row = int(atlas.digits.labels[lonely]), int(atlas.digits.rows[lonely])
    wait_for_text(page, "#map-clicked-caption", rf"^A {label} from the MNIST test set \(#{row}\)")
    page.locator("#map-clicked img").wait_for()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.mnist
def test_watch_a_short_run_learn_replay_it_and_open_a_confusion_cell(page, mnist_train):
    fill_training(page, "CNN", Channels=4, Epochs=2, Training_images=1000)
    page.click("#train")
    wait_for_text(page, "#train-caption", r"^Before training", timeout=TRAIN_WAIT_MS)
    untrained = {s: picture_src(page, s) for s in ("#train-map", "#train-layer")}
    wait_for_text(page, "#train-caption", r"^After epoch 1 of 2", timeout=TRAIN_WAIT_MS)
    for s in ("#train-map", "#train-layer"):
        wait_for_new_picture(page, s, untrained[s])
    wait_for_text(page, "#status", r"^done: ", timeout=TRAIN_WAIT_MS)
    wait_for_text(page, "#train-caption", r"^After epoch 2 of 2 · \d+% of the map's digits .* test accuracy")
    # Against the untrained pictures: on a fast run the second epoch's may already be up when the first's
    # were looked for (the slider below shows that epoch 1's differs from the last).
    last = {s: wait_for_new_picture(page, s, untrained[s]) for s in ("#train-map", "#train-layer")}

    # Play goes through every epoch again, and the slider follows it.
    page.click("#play")
    wait_for_text(page, "#train-caption", r"^Before training")
    wait_for_text(page, "#train-caption", r"^After epoch 2 of 2")
    assert page.locator("#replay input[type=range]").input_value() == "2"
    # The slider shows any epoch.
    slider = page.locator("#replay input[type=range]")
    slider.fill("1")
    wait_for_text(page, "#train-caption", r"^After epoch 1 of 2")
    assert picture_src(page, "#train-map") not in (last["#train-map"], "")

    # A confusion cell: its digits fill the gallery under it.
    page.locator("#confusion img").wait_for()
    box = page.locator("#confusion img").bounding_box()
    natural = page.evaluate("(() => { const i = document.querySelector('#confusion img'); return i.naturalWidth; })()")
    from mnist_demo.charts import HEATMAP

    x0, y0, x1, y1 = HEATMAP.box(1, 1)
    scale = box["width"] / natural
    page.mouse.click(box["x"] + (x0 + x1) / 2 * scale, box["y"] + (y0 + y1) / 2 * scale)
    wait_for_text(page, "#mistakes", r"Test digits: \d+ 1s read correctly")
    wait_until(page, "() => document.querySelectorAll('#mistakes img').length > 10", why=lambda: "no digits shown")


@pytest.mark.browser
@pytest.mark.slow
def test_the_guides_links_open_the_section_they_name(page):
    page.get_by_role("tab", name="Guide", exact=True).click()
    page.locator("#guide a[href='#train:watch-it-learn']").click()
    wait_until(page, "() => window.mnistDemo.links && window.mnistDemo.links.last === 'watch-it-learn'")
    assert page.locator("#watch-it-learn").is_visible()
    page.get_by_role("tab", name="Guide", exact=True).click()
    page.locator("#guide a[href='#draw:map-of-digits']").click()
    wait_until(page, "() => window.mnistDemo.links.last === 'map-of-digits'")
    assert page.locator("#map-of-digits").is_visible() and page.locator("#pad").is_visible() is not None
