"""Small ASGI helpers for the app's middleware: read a request's JSON body and hand it on unchanged, answer JSON.

python -m pytest tests/test_admission.py tests/test_sessions.py
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY = 1 * 2**20  # bodies read to look inside; larger ones are passed on unread (Gradio's joins are small)
JOIN_PATH = "/queue/join"  # where the page and gradio_client start an event (Gradio's /gradio_api/queue/join)
CALL_PATH = "/call/"  # where curl-style API calls start one (/gradio_api/call/<api_name>, .../call/v2/<api_name>)

Receive = Callable[[], Awaitable[dict]]


def is_post(scope: dict, path_part: str) -> bool:
    return scope["type"] == "http" and scope.get("method") == "POST" and path_part in scope.get("path", "")


async def read_json(receive: Receive) -> tuple[dict[str, Any], Receive]:
    """(the request's JSON object, or {} when it is not one or too large; a `receive` that replays the body)."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body") or size > MAX_BODY:
            break
    body: Any = {}
    if size <= MAX_BODY:
        try:
            body = json.loads(b"".join(m.get("body", b"") for m in messages))
        except ValueError:
            body = {}

    async def replay() -> dict:
        return messages.pop(0) if messages else await receive()

    return (body if isinstance(body, dict) else {}), replay


def api_name_of(scope: dict) -> str:
    """The api_name a /call/ route names ("" for other paths)."""
    rest = scope.get("path", "").rsplit(CALL_PATH, 1)[-1] if CALL_PATH in scope.get("path", "") else ""
    return rest.removeprefix("v2/").split("/", 1)[0]


async def answer_json(send, status: int, content: dict) -> None:
    """A whole JSON response."""
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
