"""The models in the page: which versions the server holds for it, and the gr.HTML that fetches and runs them.

How weights travel: an event names the model the page should run by setting this component's value to
a small reference (`PageModels.publish` returns it: hash, kind, size, as JSON); the page then asks for
the weights with the component's server function, `server.page_weights(hash)`, which answers with
`mnist_demo.webmodel`'s payload (header plus base64 float32) outside Gradio's queue, and keeps them by
hash (mnist_demo/web/page_model.js). A model published again unchanged keeps its hash, so the page
fetches each version once; an epoch's new weights are a new hash.

    python -m pytest -q tests/test_page_model.py      # the page against torch, in chromium
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
from torch import nn

from mnist_demo.webmodel import HASH_CHARS, PageModel, page_model

WEB = Path(__file__).resolve().parents[1] / "mnist_demo" / "web"
# What the server keeps for pages to fetch, all visitors together: 64 MB of float32, about 150 CNNs of
# the shipped size. Past it the least recently published or fetched are dropped (pinned ones never): a
# page asking for a dropped one gets nothing and falls back to the server's reading.
MAX_KEPT_FLOATS = 16 * 1024 * 1024
_HASH = re.compile(f"[0-9a-f]{{{HASH_CHARS}}}")


class PageModels:
    """The page formats pages may fetch, by content hash; thread-safe, bounded, least recently used dropped."""

    def __init__(self, max_floats: int = MAX_KEPT_FLOATS):
        self.max_floats = max_floats
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, PageModel] = OrderedDict()
        self._pinned: set[str] = set()

    def publish(self, model: nn.Module, pin: bool = False) -> str:
        """Make `model` fetchable by the page; the component value that names it (pass it to the gr.HTML).

        `pin` keeps it whatever comes later (the shipped models). Raises `webmodel.PageModelError` for a
        model too big for the page: the caller then leaves the page without one (the server reads).
        """
        page = page_model(model)
        with self._lock:
            self._kept[page.hash] = page
            self._kept.move_to_end(page.hash)
            if pin:
                self._pinned.add(page.hash)
            self._trim()
        return reference(page)

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

    def _trim(self) -> None:
        total = sum(p.weights.size for p in self._kept.values())
        for key in list(self._kept):
            if total <= self.max_floats:
                break
            if key not in self._pinned:
                total -= self._kept.pop(key).weights.size


def reference(page: PageModel) -> str:
    """The component value naming `page`: its hash and what it is, as JSON (the page fetches by hash)."""
    return json.dumps({k: page.header[k] for k in ("hash", "kind", "size", "crop")})


def page_model_html(models: PageModels, value: str | None = None, **kwargs) -> gr.HTML:
    """A gr.HTML holding the page's copy of the model named by its value (see the module docstring).

    Its value is what `PageModels.publish` returned (or None: no model in the page); make it an
    event's output to switch models. It renders nothing; the page reads `window.mnistDemo.models`.
    """

    def page_weights(key: object) -> dict | None:  # called by the page as server.page_weights(hash)
        return models.payload(key)

    return gr.HTML(
        value=value,
        html_template="",
        head=f"<script>{(WEB / 'net.js').read_text()}</script>",
        js_on_load=(WEB / "page_model.js").read_text(),
        server_functions=[page_weights],
        **kwargs,
    )
