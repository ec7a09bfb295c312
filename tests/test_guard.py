"""ui/guard.py in-process: the middleware's refusals and the components' refusal to download.

python -m pytest tests/test_guard.py
"""

from __future__ import annotations

import asyncio

import gradio as gr
import pytest
from gradio import processing_utils

from ui.guard import REFUSED, NoFetchMiddleware, guard


def request(path: str) -> tuple[int, bool]:
    """(status, whether the inner app was reached) for a GET of `path` through the middleware."""
    reached, sent = [], []

    async def inner(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    asyncio.run(NoFetchMiddleware(inner)({"type": "http", "path": path}, receive, send))
    return sent[0]["status"], bool(reached)


@pytest.mark.parametrize(
    "path",
    [
        "/gradio_api/file=http://example.com/x.png",
        "/gradio_api/file=https://example.com/x.png",
        "/gradio_api/file/http://example.com/x.png",
        "/gradio_api/file=ftp://example.com/x.png",
        "/gradio_api/proxy=https://x.hf.space/y",
    ],
)
def test_urls_in_paths_are_refused_before_routing(path):
    assert request(path) == (403, False)


@pytest.mark.parametrize("path", ["/", "/config", "/gradio_api/file=/tmp/gradio/abc/digit.png", "/gradio_api/info"])
def test_other_paths_pass(path):
    assert request(path) == (200, True)


@pytest.fixture
def no_download(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("Gradio was asked to download")

    monkeypatch.setattr(processing_utils, "async_ssrf_protected_download", forbidden)
    monkeypatch.setattr(processing_utils, "save_url_to_cache", forbidden)


def test_guarded_components_refuse_urls_and_keep_local_files(no_download, tmp_path):
    with gr.Blocks() as demo:
        image = gr.Image()
        upload = gr.UploadButton()
    kwargs = guard(demo)
    assert guard(demo)["middleware"] and kwargs["middleware"]  # guarding twice is harmless
    assert demo.api_open is False
    local = tmp_path / "x.png"
    local.write_bytes(b"png")
    for block in (image, upload):
        with pytest.raises(gr.Error, match=REFUSED[:20]):
            asyncio.run(block.async_move_resource_to_block_cache("http://example.com/x.png"))
        with pytest.raises(gr.Error, match=REFUSED[:20]):
            block.move_resource_to_block_cache("https://example.com/x.png")
        assert block.move_resource_to_block_cache(str(local)).endswith("x.png")  # copied into the cache
