"""Hostile input, cancel and disconnect, start/stop cycles and load, against the launched app.

Each test drives the app the way a script calling a public Space would, and checks both the answer
(a clear message) and that the server is still healthy afterwards.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from mnist_demo import runs
from testkit.sketches import draw

pytestmark = [pytest.mark.app, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
TRAIN = dict(
    model_name="cnn",
    size=4,
    epochs=1,
    batch_size=64,
    lr=0.01,
    optimizer="adam",
    train_size=200,
    augment=False,
    seed=0,
    probe=-1,
)
LONG_TRAIN = {**TRAIN, "size": 8, "epochs": 10, "train_size": 3000}  # ~10 epochs of a second or two each


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def composite(path) -> dict:
    return {"background": None, "layers": [], "composite": handle_file(str(path))}


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Drawn and hostile files to upload."""
    folder = tmp_path_factory.mktemp("uploads")
    draw("3").save(folder / "three.png")
    Image.new("RGB", (1, 1), "white").save(folder / "one-pixel.png")
    Image.new("L", (20_000, 20_000), 255).save(folder / "huge.png")  # 0.4 MB on disk, 400 M pixels decoded
    Image.new("L", (10_000, 30), 255).save(folder / "wide.png")
    (folder / "text.png").write_text("not an image at all")
    whole = (folder / "three.png").read_bytes()
    (folder / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return folder


def assert_healthy(client, files) -> None:
    assert client.predict(composite(files / "three.png"), "cnn", api_name="/predict")["label"] == "3"


@pytest.mark.parametrize(
    "name, message",
    [
        ("one-pixel.png", "1 x 1 pixels; each side must be 28 to 4096"),
        ("wide.png", "10000 x 30 pixels"),
        ("huge.png", "far too large"),
        ("text.png", "not an image file"),
        ("truncated.png", "damaged or truncated"),
    ],
)
def test_bad_image_files_get_a_clear_message(client, files, name, message):
    with pytest.raises(Exception, match=message):
        client.predict(composite(files / name), "cnn", api_name="/predict")
    assert_healthy(client, files)


def test_a_huge_image_is_refused_before_it_is_decoded(client, files):
    """20000 x 20000 would be 1.6 GB as RGBA; the refusal must come from the header, quickly."""
    peak, done = [rss_mb()], threading.Event()

    def sample():
        while not done.is_set():
            peak.append(rss_mb())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    try:
        with pytest.raises(Exception, match="far too large"):
            client.predict(composite(files / "huge.png"), "cnn", api_name="/predict")
    finally:
        done.set()
        sampler.join()
    assert time.monotonic() - start < 10
    assert max(peak) - peak[0] < 200  # MB; decoding would have taken gigabytes


@pytest.mark.parametrize(
    "value",
    [
        None,
        {"background": None, "layers": [], "composite": None},
        {"composite": None},  # missing keys: Gradio fills in the rest
    ],
)
def test_null_and_empty_payloads_read_as_nothing(client, files, value):
    result = client.predict(value, "cnn", api_name="/predict")
    assert not result.get("label") and not result.get("confidences")
    assert_healthy(client, files)


@pytest.mark.parametrize(
    "value, message",
    [
        ("a string", "valid dictionary"),
        ({"background": None, "layers": "x", "composite": None}, "valid list"),
    ],
)
def test_malformed_payloads_get_gradios_validation_message(client, files, value, message):
    with pytest.raises(Exception, match=message):
        client.predict(value, "cnn", api_name="/predict")
    assert_healthy(client, files)


def test_extra_keys_are_ignored(client, files):
    value = {**composite(files / "three.png"), "extra": 1}
    assert client.predict(value, "cnn", api_name="/predict")["label"] == "3"


@pytest.mark.parametrize("model", ["resnet", "", "yours"])
def test_unknown_model_names_are_refused(client, files, model):
    with pytest.raises(Exception, match="There is no model|no model of your own"):
        client.predict(composite(files / "three.png"), model, api_name="/predict")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"lr": -1}, "less than minimum"),
        ({"lr": 1e9}, "greater than maximum"),
        ({"epochs": 10**9}, "greater than maximum"),
        ({"size": -5}, "less than minimum"),
        ({"train_size": 1e30}, "greater than maximum"),
        ({"seed": -1}, "less than minimum"),
        ({"batch_size": 10**6}, "not in the list of choices"),
        ({"model_name": "transformer"}, "not in the list of choices"),
        ({"optimizer": "lbfgs"}, "not in the list of choices"),
        ({"size": 500}, "cnn size at most 64"),  # within the slider (it serves the MLP too), not for a CNN
    ],
)
def test_bad_hyperparameters_are_refused_on_the_server(client, files, changes, message):
    with pytest.raises(Exception, match=message):
        client.predict(**{**TRAIN, **changes}, api_name="/train")
    assert runs.RUNS.count() == 0
    assert_healthy(client, files)


@pytest.mark.parametrize(
    "token, message",
    [
        ("NaN", "Cannot train with these settings: lr must be"),
        ("Infinity", "greater than maximum"),
        ("-Infinity", "less than minimum"),
    ],
)
def test_non_finite_numbers_sent_as_raw_json_are_refused(app_url, client, files, token, message):
    """gradio_client cannot send NaN (JSON has none), but a raw request can: the server must refuse it."""
    data = (
        [TRAIN[k] for k in ("model_name", "size", "epochs", "batch_size")]
        + ["@LR@"]
        + [TRAIN[k] for k in ("optimizer", "train_size", "augment", "seed", "probe")]
    )
    body = json.dumps({"data": data}).replace('"@LR@"', token)
    with httpx.Client(base_url=app_url, timeout=60) as http:
        event = http.post("gradio_api/call/train", content=body, headers={"Content-Type": "application/json"})
        assert event.status_code == 200, event.text
        stream = http.get(f"gradio_api/call/train/{event.json()['event_id']}").text
    assert "event: error" in stream and message in stream, stream
    assert runs.RUNS.count() == 0
    assert_healthy(client, files)


@pytest.mark.mnist  # trains
def test_stop_keeps_the_last_finished_epoch(app_url, files):
    visitor = Client(app_url, verbose=False)
    job = visitor.submit(**LONG_TRAIN, api_name="/train")
    for outputs in job:
        if "test accuracy" in outputs[2]:  # an epoch has finished and become the visitor's model
            break
    job.cancel()
    wait_until(lambda: runs.RUNS.count() == 0, 60, "the stopped run to end")
    assert len(visitor.predict(composite(files / "three.png"), "yours", api_name="/predict")["confidences"]) == 10


@pytest.mark.mnist  # trains
def test_a_client_that_vanishes_ends_its_run(app_url, files):
    script = f"""
import sys
from gradio_client import Client
job = Client({app_url!r}, verbose=False).submit(**{LONG_TRAIN!r}, api_name="/train")
next(iter(job))
print("training", flush=True)
sys.stdin.read()  # wait to be killed
"""
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "training"
        assert runs.RUNS.count() == 1
    finally:
        process.kill()  # no goodbye: the connection just drops
        process.wait()
    wait_until(lambda: runs.RUNS.count() == 0, 90, "the abandoned run to end")


@pytest.mark.mnist  # trains
def test_start_stop_cycles_leave_no_threads_or_memory(app_url, client, files):
    def cycle():
        job = client.submit(**LONG_TRAIN, api_name="/train")
        next(iter(job))  # running and streaming
        job.cancel()
        wait_until(lambda: runs.RUNS.count() == 0, 60, "the run to stop")

    for _ in range(3):  # warm up: thread pools and allocator arenas reach their working size
        cycle()
    gc.collect()
    threads, memory = threading.active_count(), rss_mb()
    for _ in range(20):
        cycle()
    gc.collect()
    time.sleep(1)
    assert threading.active_count() <= threads + 2
    assert rss_mb() - memory < 100  # MB, over 20 runs: no run's model, optimizer or data stays behind
    assert_healthy(client, files)
