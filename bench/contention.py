"""Drawing while someone trains: /predict round trips through the app during a /train run, against idle.

One client trains (the app's default CNN settings, with the most epochs and images the app allows so that
the run outlasts the measurement), another draws: its /predict round trips while the training streams
are compared with round trips on the idle app, measured just before the run starts and just after it is
cancelled. The app gives training and drawing one torch thread each so that they need not fight.

    python -m bench --only contention [--quick]
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

from bench.report import Result
from bench.roundtrip import stroke
from mnist_demo import limits
from testkit.canvases import png_files
from testkit.server import App, connect, running, train_args
from testkit.timing import Stats

NAME = "contention"
REPEATS = {True: 20, False: 100}  # strokes while training; as many again on the idle app, half before, half after
TARGET_RATIO = 2.0
START_TIMEOUT_S = 120  # until the training run streams its first update (it loads MNIST first)
# The Train tab's defaults, made long enough to last (it is cancelled as soon as the strokes are done).
LONG_RUN = dataclasses.replace(limits.APP_DEFAULTS, epochs=limits.MAX_EPOCHS, train_size=limits.MAX_TRAIN_SIZE)


def strokes(client, files, n: int) -> list[float]:
    """Seconds of each of `n` /predict round trips by `client`, the drawings in turn."""
    return [stroke(client, *files[i % len(files)])[0] for i in range(n)]


def run(quick: bool, app: App | None = None) -> list[Result]:
    """The row of this benchmark; `app` is a running app to use, else one is launched for it."""
    n = REPEATS[quick]
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp, running(app) as app:
        files = png_files(tmp)
        drawer, trainer = app.client, connect(app.url)
        strokes(drawer, files, 3)  # warm-up
        idle = strokes(drawer, files, n // 2)

        job = trainer.submit(**train_args(LONG_RUN), api_name="/train")
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not job.outputs() and not job.done():  # started: MNIST loaded, steps running
                if time.monotonic() > deadline:
                    raise TimeoutError(f"/train streamed nothing within {START_TIMEOUT_S} s")
                time.sleep(0.05)
            updates_before = len(job.outputs())
            busy = strokes(drawer, files, n)
            updates = len(job.outputs()) - updates_before
            lasted = not job.done()
            status = job.outputs()[-1][2] if job.outputs() else ""
        finally:
            job.cancel()
        time.sleep(1.0)  # the cancel lands at the run's next yield (at most runs.UPDATE_EVERY_S later)
        idle += strokes(drawer, files, n - n // 2)

    idle_ms, busy_ms = Stats.of(idle).scaled(1e3), Stats.of(busy).scaled(1e3)
    ratio = busy_ms.median / idle_ms.median
    return [
        Result.timed(
            NAME,
            "/predict round trip while 1 visitor trains",
            busy_ms,
            baseline=idle_ms.median,
            baseline_label="idle app",
            ratio=ratio,
            target=f"ratio <= {TARGET_RATIO:g}",
            passed=ratio <= TARGET_RATIO and lasted,
            note=f"training streamed {updates} updates during the strokes and "
            f"{'was still running at the end' if lasted else 'ENDED before the strokes did'} "
            f"(last status: {status.split(' · about')[0]}); idle p5-p95 "
            f"{idle_ms.p5:.0f}-{idle_ms.p95:.0f} ms; ratio = busy median / idle median",
        )
    ]
