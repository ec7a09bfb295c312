"""The models in the page: which versions the server holds for it, and the gr.HTML that fetches and runs them.

The component also reads the stroke pad's strokes in the page while the pen moves (mnist_demo/web/read.js,
verdict.js and live.js; `window.mnistDemo.read(strokes)`), with the constants in PAGE_READING.

How weights travel: an event names the model the page should run by setting this component's value to
a small reference (`PageModels.publish` returns it: hash, kind, size, the checkpoint's "not a digit"
rule, as JSON); the page then asks for
the weights with the component's server function, `server.page_weights(hash)`, which answers with
`mnist_demo.webmodel`'s payload (header plus base64 float32) outside Gradio's queue, and keeps them by
hash (mnist_demo/web/page_model.js). A model published again unchanged keeps its hash, so the page
fetches each version once; an epoch's new weights are a new hash.

In the app there is one `PageModels` per app (`ui.common.Page.page_models`) and one component, in the
Draw tab; `ModelInPage` sets it on load, on a change of the picker, and from every handler that changes
the picked model (each epoch of a run and Stop, fine-tuning, a loaded weights file).

    python -m pytest -q tests/test_page_model.py      # the page against torch, in chromium
    python -m pytest -q tests/test_page_reading.py    # the page's reading against mnist_demo's
    python -m pytest -q tests/test_page_reference.py  # which model the page gets, and when
    python -m pytest -q tests/test_page_app.py        # all of it in the app, in chromium
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
import torch
from torch import nn

from mnist_demo.data import normalize
from mnist_demo.inference import MAX_DIGITS, NOT_A_DIGIT, NOT_A_NUMBER, NUMBER_ALTERNATIVES, UNSURE_BELOW
from mnist_demo.reject import DECLINE_KEY, SCORE_KEY, WEIGHT_KEY, Decline, decline_threshold
from mnist_demo.session import Visitor, is_own
from mnist_demo.strokes import PAGE_CONSTANTS
from mnist_demo.webmodel import HASH_CHARS, PageModel, PageModelError, page_model

if TYPE_CHECKING:  # ui.common holds a registry per app (Page), so it imports this module
    from ui.common import Models

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
# What the server keeps for pages to fetch, all visitors together: 64 MB of float32, about 150 CNNs of
# the shipped size. Past it the least recently published or fetched are dropped (pinned ones never): a
# page asking for a dropped one gets nothing and falls back to the server's reading.
MAX_KEPT_FLOATS = 16 * 1024 * 1024
_HASH = re.compile(f"[0-9a-f]{{{HASH_CHARS}}}")
# Everything the page needs to read strokes as the server does (the component's `constants` prop): the
# stroke pad's rules, the network's input for each uint8 pixel exactly as `normalize` makes it (float32),
# and the words' thresholds. The page types none of these numbers itself.
PAGE_READING = {
    **PAGE_CONSTANTS,
    "input_values": normalize(torch.arange(256, dtype=torch.uint8)[None]).reshape(256).tolist(),
    "unsure_below": UNSURE_BELOW,
    "max_digits": MAX_DIGITS,
    "number_alternatives": NUMBER_ALTERNATIVES,
    "not_a_digit": NOT_A_DIGIT,  # the verdicts of a drawing the checkpoint's "not a digit" rule declines
    "not_a_number": NOT_A_NUMBER,
}
SCRIPTS = ("net.js", "read.js", "verdict.js", "live.js")  # in the page's head, in this order
START = "\nMnistLive.start(props.constants, window.mnistDemo.models);\n"  # after page_model.js


class PageModels:
    """The page formats pages may fetch, by content hash; thread-safe, bounded, least recently used dropped."""

    def __init__(self, max_floats: int = MAX_KEPT_FLOATS):
        self.max_floats = max_floats
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, PageModel] = OrderedDict()
        self._pinned: set[str] = set()
        # Each model object's hash, so that publishing it again costs nothing: the app's models are frozen
        # copies (a checkpoint per epoch, per fine-tuning, per file), never changed once published.
        self._published: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()
        self.conversions = 0  # models converted to the page's format so far (the tests count them)

    def publish(self, model: nn.Module, pin: bool = False, decline: Decline | None = None) -> str:
        """Make `model` fetchable by the page; the component value that names it (pass it to the gr.HTML).

        `pin` keeps it whatever comes later (the shipped models); `decline` is its checkpoint's "not a digit"
        rule (`reject.decline_threshold`), which the page applies as the server does: the reference carries
        it, and a "residual" rule's subspace goes with the weights (`webmodel.page_model`). A model
        published before and still kept is not converted again, so `model` must not change once
        published (nor its rule: a model object comes with one checkpoint's; only whether a subspace
        goes along is checked). Raises `webmodel.PageModelError` for a model too big for the page: the
        caller then leaves the page without one (the server reads).
        """
        subspace = decline.page_subspace if decline is not None else None
        with self._lock:
            known = self._kept.get(self._published.get(model, ""))
            if known is not None and ("residual" in known.header) == (subspace is not None):
                return self._keep(known, pin, decline)
        page = page_model(model, subspace)  # outside the lock: a few ms for a CNN, more for a wide MLP
        with self._lock:
            self.conversions += 1
            self._published[model] = page.hash
            self._kept[page.hash] = page
            return self._keep(page, pin, decline)

    def known(self, model: nn.Module) -> str | None:
        """The hash `model` was published under while the page may still hold it; None otherwise (nothing converted)."""
        with self._lock:
            known = self._published.get(model)
            return known if known in self._kept else None

    def _keep(self, page: PageModel, pin: bool, decline: Decline | None) -> str:
        """Mark `page` as the most recently used (and pinned), trim the rest; its reference. Under the lock."""
        self._kept.move_to_end(page.hash)
        if pin:
            self._pinned.add(page.hash)
        self._trim()
        return reference(page, decline)

    def payload(self, key: object) -> dict | None:
        """The payload of a published model, or None for anything else (unknown, dropped, not a hash)."""
        if not isinstance(key, str) or not _HASH.fullmatch(key):
            return None
        with self._lock:
            page = self._kept.get(key)
            if page is None:
                return None
            self._kept.move_to_end(key)
        return page.payload()

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def floats(self) -> int:
        """The weights kept, all models together."""
        return sum(p.weights.size for p in list(self._kept.values()))

    def _trim(self) -> None:
        total = self.floats
        for key in list(self._kept):
            if total <= self.max_floats:
                break
            if key not in self._pinned:
                total -= self._kept.pop(key).weights.size


def reference(page: PageModel, decline: Decline | None = None) -> str:
    """The component value naming `page`: its hash, what it is and its checkpoint's "not a digit" rule
    (`decline_below`, `decline_score` and `decline_weight`, the residual's weight; null: it never
    declines), as JSON (the page fetches the weights by hash)."""
    rule = decline.page() if decline is not None else {DECLINE_KEY: None, SCORE_KEY: None, WEIGHT_KEY: None}
    return json.dumps({**{k: page.header[k] for k in ("hash", "kind", "size", "crop")}, **rule})


def page_reference(registry: PageModels, models: Models, key: object, visitor: Visitor | None) -> str | None:
    """The page-model component's value for the model a picker value names; None when the page cannot run it.

    For every event that changes the model the Draw tab reads with: a picker change, each epoch of a
    training run, a fine-tuning, a loaded file. Each model is converted and sent once (`publish` keeps
    it by object and by hash); the shipped ones are pinned. None (no model in the page: the server's
    reading is all there is) for a model too big for the page or a key that names no model.
    """
    try:
        checkpoint = models.pick(key, visitor)
    except gr.Error:  # the Draw tab's own reading says what is wrong with the key
        return None
    try:
        return registry.publish(checkpoint.model, pin=not is_own(key), decline=decline_threshold(checkpoint.metadata))
    except PageModelError:
        return None


def page_model_html(models: PageModels, value: str | None = None, **kwargs) -> gr.HTML:
    """A gr.HTML holding the page's copy of the model named by its value, and the page's live reading.

    Its value is what `PageModels.publish` (or `page_reference`) returned, or None: no model in the
    page; make it an event's output to switch models. It renders nothing; the page reads
    `window.mnistDemo.models` and offers `window.mnistDemo.read` (mnist_demo/web/live.js).
    """

    def page_weights(key: object) -> dict | None:  # called by the page as server.page_weights(hash)
        return models.payload(key)

    return gr.HTML(
        value=value,
        html_template="",
        head="".join(f"<script>{(WEB / name).read_text()}</script>" for name in SCRIPTS),
        js_on_load=(WEB / "page_model.js").read_text() + START,
        server_functions=[page_weights],
        constants=PAGE_READING,  # props.constants in live.js
        **kwargs,
    )


@dataclass(frozen=True)
class ModelInPage:
    """The Draw tab's page-model component and what sets it: every event that changes the model the tab reads with.

    `reference(key, visitor)` is the component's value for a picker value (a handler for picker.change and
    Stop); `follows(handler, picker_at)` wraps a handler whose outputs include the picker, at that
    position, into one whose outputs end with the component's value: the picked model's reference each
    time the handler sets the picker (each epoch of a run, a fine-tuning, a loaded file), else
    `gr.skip()`. Handlers may be plain functions or generators (whose `None` ticks pass through, for
    ui/runner.py's `streamed`); the visitor is the argument that is a `Visitor`.

        live = ModelInPage(page.page_models, page.models, draw.page_model)
        train.click(live.follows(h.train, picker_at=3), inputs, [..., draw.picker, ..., live.component])
    """

    registry: PageModels
    models: Models
    component: gr.HTML

    def reference(self, key: object, visitor: Visitor | None = None) -> str | None:
        return page_reference(self.registry, self.models, key, visitor)

    def after(self, picker: object, visitor: Visitor | None):
        """The component's output for a handler's picker output: the new model's reference, or gr.skip()."""
        if isinstance(picker, gr.Dropdown):  # made in a handler, it keeps its arguments, not a .value
            key = picker.constructor_args.get("value")
        elif isinstance(picker, dict):  # gr.update(value=...)
            key = picker.get("value")
        else:
            key = None
        return gr.skip() if key is None else self.reference(key, visitor)  # gr.skip(): the same model

    def follows(self, handler: Callable, picker_at: int) -> Callable:
        def visitor_of(args: tuple, kwargs: dict) -> Visitor | None:
            return next((a for a in (*args, *kwargs.values()) if isinstance(a, Visitor)), None)

        if inspect.isgeneratorfunction(handler):

            @functools.wraps(handler)  # the same signature: Gradio passes gr.Request and the like by it
            def following(*args, **kwargs):
                visitor = visitor_of(args, kwargs)
                updates = handler(*args, **kwargs)
                try:
                    for out in updates:
                        yield None if out is None else (*out, self.after(out[picker_at], visitor))
                finally:  # closed (a Stop, ui/runner.py): the handler's run is closed at once, not when collected
                    updates.close()

        else:

            @functools.wraps(handler)
            def following(*args, **kwargs):
                out = handler(*args, **kwargs)
                return (*out, self.after(out[picker_at], visitor_of(args, kwargs)))

        return following
