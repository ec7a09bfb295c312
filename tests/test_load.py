"""Load: 20 clients drawing for about a minute while two others train, against `python app.py` in its own
process, then the same load again for 20 s. Every request must be answered correctly, every run must
finish, and the second load must not grow the server's memory much beyond the first.

Loopback only, bounded in clients and time (LOAD_SECONDS, default 60).
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from testkit.canvases import png_files, upload
from testkit.server import connect, launched

pytestmark = [pytest.mark.app, pytest.mark.slow]

DRAWERS = 20  # clients sending a stroke as soon as the previous one is answered
TRAINERS = 2
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", 60))
AGAIN_SECONDS = 20  # the same load again: memory must not keep growing
TRAIN = dict(
    model_name="cnn",
    size=8,
    epochs=2,
    batch_size=128,
    lr=0.01,
    optimizer="adam",
    train_size=6000,
    augment=False,
    seed=0,
    probe=-1,
)


def load(url: str, digits: list[tuple[str, str]], seconds: float) -> tuple[list, list[str], list[str]]:
    """`DRAWERS` clients drawing and `TRAINERS` training for `seconds`: (answers, failures, final statuses)."""
    answers, failures, statuses = [], [], []
    stop = threading.Event()

    def draw_until_stopped(k: int) -> None:
        client, i = connect(url), k
        while not stop.is_set():
            digit, png = digits[i % len(digits)]
            try:
                label = client.predict(upload(png), "cnn", api_name="/predict")["label"]
                answers.append(label == digit or f"{digit} read as {label}")
            except Exception as err:  # every failure fails the test; collected to report them all
                failures.append(f"drawer {k}: {type(err).__name__}: {err}")
            i += 1

    def train(k: int) -> None:
        try:
            job = connect(url).submit(**{**TRAIN, "seed": k}, api_name="/train")
            statuses.append(job.result(timeout=seconds * 10)[2])
        except Exception as err:
            failures.append(f"trainer {k}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=draw_until_stopped, args=(k,)) for k in range(DRAWERS)]
    threads += [threading.Thread(target=train, args=(k,)) for k in range(TRAINERS)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=seconds * 10)
    assert not any(t.is_alive() for t in threads), "a client never got its answer"
    return answers, failures, statuses


@pytest.mark.mnist  # trains
def test_twenty_drawing_while_two_train(tmp_path):
    digits = png_files(tmp_path)
    with launched() as app:
        idle = app.rss_mb()
        answers, failures, statuses = load(app.url, digits, LOAD_SECONDS)
        loaded = app.rss_mb()
        again = load(app.url, digits, AGAIN_SECONDS)
        reloaded = app.rss_mb()

    for run_answers, run_failures, run_statuses in ((answers, failures, statuses), again):
        assert not run_failures, run_failures[:5]
        wrong = [a for a in run_answers if a is not True]
        assert len(run_answers) > DRAWERS * 5 and not wrong, (len(run_answers), wrong[:5])
        assert len(run_statuses) == TRAINERS and all(s.startswith("done") for s in run_statuses), run_statuses
    # The first load brings in MNIST (55 MB, once), torch's training code and the heaps' working size;
    # the same load again must not add much more (measured: 0-75 MB after the first).
    assert loaded - idle < 700, (idle, loaded)
    assert reloaded - loaded < 150, (idle, loaded, reloaded)
