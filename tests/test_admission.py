"""ui/admission.py: training refused fast beyond a short line, while strokes still go through.

A small Blocks app with the app's shape (a draw event, a train event with one slot, one Gradio queue)
is launched in-process; training runs hold their slot until the test lets them go.

    python -m pytest tests/test_admission.py
"""

from __future__ import annotations

import re
import threading
import time

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from ui.admission import MAX_WAITING as APP_MAX_WAITING
from ui.admission import TrainingAdmission, waiting_in
from ui.draw import EXAMPLES

pytestmark = [pytest.mark.app, pytest.mark.slow]

MAX_WAITING = 2


def test_the_estimate_follows_finished_runs():
    clock = [0.0]
    admission = TrainingAdmission(lambda: 0, typical_run_s=10, clock=lambda: clock[0])
    assert admission.wait_s(waiting=2) == 30  # two ahead and the one running
    with admission.run():
        clock[0] += 20
    assert admission.run_s == pytest.approx(13.0)
    assert "full (4 runs waiting); try again in about 65 s" in TrainingAdmission(lambda: 4, typical_run_s=13).refusal()
    assert TrainingAdmission(lambda: 3, typical_run_s=13).refusal() is None


@pytest.fixture
def app():
    release = threading.Event()
    with gr.Blocks() as demo:
        number, out = gr.Number(1), gr.Number()
        admission = TrainingAdmission(lambda: waiting_in(demo, "train"), max_waiting=MAX_WAITING)

        def train(x):
            with admission.run():
                release.wait(60)
            return x

        number.change(lambda x: x + 1, number, out, api_name="draw", concurrency_limit=4, concurrency_id="draw")
        gr.Button().click(train, number, out, api_name="train", concurrency_limit=1, concurrency_id="train")
    demo.queue(max_size=2 + MAX_WAITING)  # small: without admission, training alone would fill it
    _, url, _ = demo.launch(
        server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, app_kwargs=admission.app_kwargs(demo)
    )
    try:
        yield url, release
    finally:
        release.set()
        demo.close()


def join_as_the_page(url: str, api_name: str) -> httpx.Response:
    """POST /gradio_api/queue/join for the event named `api_name`, as the browser does."""
    with httpx.Client(base_url=url, timeout=30) as http:
        fn_index = next(d["id"] for d in http.get("config").json()["dependencies"] if d.get("api_name") == api_name)
        body = {"data": [1], "fn_index": fn_index, "session_hash": "page", "event_data": None, "trigger_id": None}
        return http.post("gradio_api/queue/join", json=body)


def test_training_beyond_the_line_is_refused_at_once_and_drawing_goes_on(app):
    url, release = app
    trainers = [Client(url, verbose=False) for _ in range(MAX_WAITING + 3)]
    jobs = [trainers[0].submit(1, api_name="/train")]
    time.sleep(1.0)  # the first run holds the one slot
    jobs += [c.submit(1, api_name="/train") for c in trainers[1 : MAX_WAITING + 1]]
    time.sleep(1.0)  # ...and these wait in line
    start = time.monotonic()
    for client in trainers[MAX_WAITING + 1 :]:  # gradio_client hides the reason: ask as the page does
        with pytest.raises(httpx.HTTPStatusError, match="400"):
            client.submit(1, api_name="/train").result(timeout=30)
    refused = join_as_the_page(url, "train")
    assert time.monotonic() - start < 10
    assert refused.status_code == 400, refused.text  # the page shows `detail` as an error
    assert "training queue is full (2 runs waiting); try again in about" in refused.json()["detail"]
    drawer = Client(url, verbose=False)
    assert [drawer.predict(i, api_name="/draw") for i in range(5)] == [1, 2, 3, 4, 5]  # never "queue full"
    release.set()
    assert [job.result(timeout=30) for job in jobs] == [1] * (MAX_WAITING + 1)


TINY_RUN = ["cnn", 1, 1, 16, 0.01, "adam", 100, False, 0, -1]  # the Train tab's settings; its states follow


def test_sixty_four_training_requests_from_fresh_sessions_leave_drawing_alone(app_url):
    """The app itself: 64 /train joins filled Gradio's one queue, and every stroke got "Queue is full"."""
    with httpx.Client(base_url=app_url, timeout=60) as http:
        train = next(d for d in http.get("config").json()["dependencies"] if d.get("api_name") == "train")
        data = TINY_RUN + [None] * (len(train["inputs"]) - len(TINY_RUN))  # the states the page sends empty
        train = train["id"]
        joined = []
        for i in range(64):
            body = {"data": data, "fn_index": train, "session_hash": f"script{i}", "trigger_id": None}
            joined.append((f"script{i}", http.post("gradio_api/queue/join", json=body)))
        accepted = [(s, r.json()["event_id"]) for s, r in joined if r.status_code == 200]
        refused = [r for _, r in joined if r.status_code != 200]
        try:
            assert len(accepted) <= 1 + APP_MAX_WAITING, len(accepted)
            assert all(r.status_code == 400 for r in refused)
            assert "The training queue is full" in refused[-1].json()["detail"]
            assert re.search(r"try again in about \d+ s\. Drawing works meanwhile", refused[-1].json()["detail"])
            drawer = Client(app_url, verbose=False)
            example = EXAMPLES[0]
            for _ in range(5):  # never "Queue is full"
                value = {"strokes": example.strokes}
                assert drawer.predict(value, "cnn", api_name="/predict")["label"] == example.label
        finally:
            for session, event in accepted:  # the runs let in are not this test's to wait for
                http.post("gradio_api/cancel", json={"session_hash": session, "fn_index": train, "event_id": event})
