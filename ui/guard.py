"""What a public Space refuses from requests before Gradio acts on them: fetching URLs, skipping the queue.

Gradio downloads whatever a request names: a drawing whose file path is a URL (any input's FileData is
moved to the cache, and an http(s) path is fetched to get there), `GET /gradio_api/file=http://host/x`
(fetched and streamed back; `/gradio_api/file/http://...` too), and `/gradio_api/proxy=...`. To refuse a
loopback URL it even asks dns.google first. A demo server should fetch nothing it is told to, so:

- `NoFetchMiddleware` answers 403 to any path that holds a URL (`://`) or a proxy request, before routing;
- `guard(demo)` makes every component of `demo` refuse a URL where Gradio would download it, with a
  message (the depth at which FileData from any route, present or future, reaches the network);
- it closes the REST routes (`/gradio_api/run/...`) that skip the queue and its limits (`api_open`);
- and it turns off Gradio's launch telemetry (the version check at `gr.Blocks()` is the app's to switch
  off: `gr.Blocks(analytics_enabled=False)` or GRADIO_ANALYTICS_ENABLED=False before building).

The app calls it once, after building the Blocks, and passes what it returns to launch:

    demo.launch(**LAUNCH, app_kwargs=guard(demo))

    python -m pytest tests/test_guard.py tests/test_hostile.py
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

FORBIDDEN = 403
URL_MARK = "://"  # no path this app serves holds one; every URL Gradio would fetch does
PROXY_MARK = "proxy="  # gr.load()'s reverse proxy: this app loads no other app
REFUSED = (
    "This app downloads nothing: send the file itself (gradio_client's handle_file uploads a local file), not a link."
)
GUARDED = "_mnist_demo_guarded"  # set on a guarded Blocks, so that guarding twice wraps nothing twice


def is_url(path: object) -> bool:
    """Would Gradio fetch this FileData path? (it fetches http and https; any scheme is refused here)"""
    return isinstance(path, str) and URL_MARK in path


class NoFetchMiddleware:
    """ASGI middleware: 403, with no DNS lookup or connection, for a path naming a URL or a proxy."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope.get("path", "")  # already percent-decoded, as the routes see it
            if URL_MARK in path or PROXY_MARK in path:
                body = json.dumps({"detail": REFUSED}).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": FORBIDDEN, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _refusing(move):
    """`Block.(async_)move_resource_to_block_cache` that raises gr.Error for a URL instead of downloading it."""
    if getattr(move, GUARDED, False):
        return move

    if inspect.iscoroutinefunction(move):

        @functools.wraps(move)
        async def refuse_async(url_or_file_path):
            if is_url(str(url_or_file_path)):
                raise gr.Error(REFUSED)
            return await move(url_or_file_path)

        wrapped = refuse_async
    else:

        @functools.wraps(move)
        def refuse(url_or_file_path):
            if is_url(str(url_or_file_path)):
                raise gr.Error(REFUSED)
            return move(url_or_file_path)

        wrapped = refuse
    setattr(wrapped, GUARDED, True)
    return wrapped


def guard(demo: gr.Blocks) -> dict[str, Any]:
    """Make `demo` fetch nothing a request names and queue every API call; the `app_kwargs` for launch."""
    for block in demo.blocks.values():
        for name in ("async_move_resource_to_block_cache", "move_resource_to_block_cache"):
            move = getattr(block, name, None)
            if move is not None:
                setattr(block, name, _refusing(move))
    demo.api_open = False  # /gradio_api/run/<name> would run events outside the queue and its limits
    demo.analytics_enabled = False  # no telemetry at launch
    setattr(demo, GUARDED, True)
    return {"middleware": [Middleware(NoFetchMiddleware)]}
