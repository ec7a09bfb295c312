"""Hostile requests against the launched app, which must reach for nothing beyond this machine.

The app runs in its own process with an audit hook (testkit/audit.py) that records every DNS lookup and
connection leaving loopback; after each test the record must still be empty. The requests are the ones
a script can send a public Space: URLs where files go, `file=` and `proxy=` URLs, stroke uploads with
absurd layer indices, many layers, a checkpoint that claims a huge model. Every error message must also
keep the server's folders and object addresses to itself.

The app is `python app.py` itself; HOSTILE_COMMAND runs the same tests against another command.

    python -m pytest tests/test_hostile.py
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from safetensors.torch import save as save_safetensors

from mnist_demo.canvas import MAX_LAYERS, MAX_SIDE
from mnist_demo.checkpoint import METADATA_KEY, checkpoint_bytes
from mnist_demo.models import build_model
from testkit.audit import audit_env, outbound
from testkit.server import launched

pytestmark = [pytest.mark.app, pytest.mark.slow]

COMMAND = shlex.split(os.environ.get("HOSTILE_COMMAND", f"{sys.executable} app.py"))
REFUSED = "downloads nothing"
URLS = [
    "http://example.com/digit.png",
    "https://example.com/digit.png",
    "http://127.0.0.1:9/digit.png",  # loopback: Gradio asked dns.google before refusing it
    "http://[::1]/digit.png",
    "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata service
]
FILE_TYPES = ("imageeditor", "uploadbutton", "file", "image")
SECRETS = [os.getcwd(), tempfile.gettempdir(), str(Path.home())]  # folders no message may name
ADDRESS = re.compile(r"0x[0-9a-f]{6,}", re.IGNORECASE)  # `<object at 0x7f...>`
SSE_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """(the running app, the audited environment); Gradio's telemetry is the app's to switch off."""
    env = audit_env(tmp_path_factory.mktemp("audit"))
    extra = {
        "PYTHONPATH": env["PYTHONPATH"],
        "MNIST_AUDIT_LOG": env["MNIST_AUDIT_LOG"],
        "GRADIO_ANALYTICS_ENABLED": None,
    }
    with launched(command=COMMAND, env=extra) as app:
        yield app, env, outbound(env)  # what start-up itself reached for


@pytest.fixture(scope="module")
def app(audited):
    return audited[0]


@pytest.fixture(autouse=True)
def nothing_leaves_the_machine(audited):
    """Fails the test during which the server looked up or connected to anything beyond loopback."""
    before = len(outbound(audited[1]))
    yield
    attempts = outbound(audited[1])[before:]
    assert not attempts, f"the server reached beyond loopback: {attempts[:10]}"


def test_start_up_reaches_for_nothing(audited):
    """Gradio's telemetry looked up api.gradio.app and huggingface.co unless the app switches it off."""
    assert not audited[2], audited[2]


@pytest.fixture(scope="module")
def http(app):
    with httpx.Client(base_url=app.url, timeout=SSE_TIMEOUT_S) as client:
        yield client


@pytest.fixture(scope="module")
def config(http):
    config = http.get("config").json()
    config["by_id"] = {c["id"]: c for c in config["components"]}
    return config


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def sketch(composite=None, layers=(), background=None) -> dict:
    return {"background": background, "layers": list(layers), "composite": composite}


def clean(message: str | None) -> str:
    """`message`, checked to name no server folder and no object address."""
    text = message or ""
    leaked = [s for s in SECRETS if s in text] + ADDRESS.findall(text)
    assert not leaked, f"an error message reveals {leaked}: {text}"
    return text


def join(http, fn_index: int, data: list, session: str | None = None) -> dict:
    """Run event `fn_index` through the queue as the page does: its last message (process_completed)."""
    session = session or secrets.token_hex(8)
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    joined = http.post("gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return {"success": False, "output": {"error": clean(joined.text)}}
    with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError(f"event {fn_index} never completed")


def error_of(message: dict) -> str:
    assert not message.get("success"), message
    return clean((message.get("output") or {}).get("error"))


def upload(http, data: bytes, name: str = "upload.png") -> str:
    """Upload bytes as the page does; the server's path for them."""
    response = http.post("gradio_api/upload", files={"files": (name, data)})
    response.raise_for_status()
    return response.json()[0]


def png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (side, side), 255).save(out, format="PNG")
    return out.getvalue()


def predict_index(config) -> int:
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "predict")


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("part", ["composite", "background", "layers", "image"])
def test_a_drawing_named_by_url_is_refused_without_fetching(http, config, url, part):
    if part == "image":  # /predict takes an image file alone too
        value = file_data(url)
    else:
        value = sketch(**{part: [file_data(url)] if part == "layers" else file_data(url)})
    assert REFUSED in error_of(join(http, predict_index(config), [value, "cnn", None]))


def test_no_event_fetches_a_url_given_for_any_of_its_files(http, config):
    """Every event with a file input, private ones too (the page calls them by index, so can a script)."""
    checked = 0
    for dep in config["dependencies"]:
        inputs = [config["by_id"][i] for i in dep["inputs"]]
        if not any(c["type"] in FILE_TYPES for c in inputs):
            continue
        data = [
            (sketch(file_data(URLS[0])) if c["type"] == "imageeditor" else file_data(URLS[0]))
            if c["type"] in FILE_TYPES
            else c.get("props", {}).get("value")
            for c in inputs
        ]
        assert REFUSED in error_of(join(http, dep["id"], data)), dep
        checked += 1
    assert checked >= 3  # the pad's events and both upload buttons


@pytest.mark.parametrize(
    "path",
    [
        "gradio_api/file=http://example.com/x.png",
        "gradio_api/file=https://example.com/x.png",
        "gradio_api/file=http://127.0.0.1:9/x.png",
        "gradio_api/file=http%3A%2F%2Fexample.com%2Fx.png",
        "gradio_api/file/http://example.com/x.png",
        "gradio_api/proxy=https://someone.hf.space/file=x.png",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_file_and_proxy_urls_are_refused_without_fetching(http, path, method):
    response = http.request(method, path)
    assert response.status_code in (400, 403), response.text
    clean(response.text)


def test_local_paths_are_refused_without_naming_the_servers_folders(http, config):
    for path in ["digit.png", "/etc/passwd", "../app.py", "file:///etc/passwd"]:
        error_of(join(http, predict_index(config), [sketch(file_data(path)), "cnn", None]))
        error_of(join(http, predict_index(config), [file_data(path), "cnn", None]))  # an image file alone
        error_of(join(http, predict_index(config), [{"path": path}, "cnn", None]))  # without Gradio's mark


def test_the_rest_routes_do_not_skip_the_queue(http):
    """api_open: /gradio_api/run/<name> ran events outside the queue and its limits."""
    response = http.post("gradio_api/run/train", json={"data": [None] * 11})
    assert response.status_code == 404, response.text


def takes_uploads(config) -> bool:
    """Does the app's Sketchpad offer its stroke upload endpoint? The Draw tab's stroke pad sends JSON, and
    /predict's input (ui.components.DrawingValues) has none: then every upload must get a 404."""
    editor = next(c for c in config["components"] if c["type"] == "imageeditor")
    return "accept_blobs" in editor["props"].get("server_fns", [])


def blob(http, config, index, size: int = 1000, stroke: str = "s1") -> httpx.Response:
    pad = next(c["id"] for c in config["components"] if c["type"] == "imageeditor")
    fields = {
        "id": stroke,
        "type": "layer",
        "index": str(index),
        "component_id": str(pad),
        "session_hash": "hostile",
        "fn_name": "accept_blobs",
    }
    return http.post("gradio_api/component_server/", data=fields, files={"file": ("blob", b"\0" * size)})


@pytest.mark.parametrize("index", [-1, -(10**6), 30_000_000, MAX_LAYERS])
def test_stroke_uploads_with_absurd_layer_indices_get_400(http, config, app, index):
    """-1 gave HTTP 500; 3 x 10^7 kept +229 MB for a 1 KB request."""
    before = app.rss_mb()
    response = blob(http, config, index)
    assert response.status_code == (400 if takes_uploads(config) else 404), response.text
    assert app.rss_mb() - before < 50  # MB
    clean(response.text)


def test_unused_stroke_uploads_do_not_accumulate(http, config, app):
    """Uploads whose change event never comes once stayed in memory until the server stopped."""
    for i in range(20):  # warm up the route and its buffers
        blob(http, config, 0, size=300_000, stroke=f"warm{i}")
    before = app.rss_mb()
    for i in range(400):  # 120 MB sent, none of it ever used
        assert blob(http, config, 0, size=300_000, stroke=f"s{i}").status_code == (
            200 if takes_uploads(config) else 404
        )
    assert app.rss_mb() - before < 60  # MB: the store keeps at most a few tens of MB


def peak_rss_during(app, call) -> tuple[float, object]:
    """(peak RSS growth of the app in MB while `call()` runs, its result)."""
    start, peak, done = app.rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak.append(app.rss_mb() - start)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = call()
    finally:
        done.set()
        sampler.join()
    return max(peak), result


def test_many_layers_of_one_large_image_are_refused_before_decoding(http, config, app):
    """Six layers naming one 6 KB 4096 x 4096 PNG peaked at +911 MB."""
    path = upload(http, png(MAX_SIDE))
    value = sketch(layers=[file_data(path)] * 6)
    grown, message = peak_rss_during(app, lambda: join(http, predict_index(config), [value, "cnn", None]))
    assert f"at most {MAX_LAYERS} layers" in error_of(message)
    assert grown < 100, grown  # MB


def test_a_checkpoint_claiming_a_huge_model_is_refused_cheaply(http, config, app):
    """A 1 KB file claiming a CNN of width 2048 cost +1.44 GB and seconds: the model was built first."""
    net = build_model("mlp", 4)
    _, meta = checkpoint_bytes(net)
    data = save_safetensors(
        dict(net.state_dict()), metadata={METADATA_KEY: json.dumps({**meta, "model": "cnn", "size": 2048})}
    )
    path = upload(http, data, "wide.safetensors")
    load = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "upload")
    start = time.monotonic()
    grown, message = peak_rss_during(app, lambda: join(http, load, [file_data(path), None]))
    assert "width must be an integer from 1 to 64" in error_of(message)
    assert grown < 100 and time.monotonic() - start < 5, (grown, time.monotonic() - start)
