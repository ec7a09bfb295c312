"""Start-up and memory of the app: spawn to first answer, and resident memory idle, training, and after training.

Each launch spawns `python app.py` and polls until /predict answers; the time from spawn to that answer
is the start-up. On the last launch, resident memory (VmRSS of the process and any children, from /proc)
is read after a few strokes (idle), sampled every 50 ms through a training run (the Train tab's defaults;
the peak minus idle is what a run costs), then after that run and after a second one: the second must
not add another copy of MNIST, which the app loads once, as uint8, and shares read-only.

    python -m bench --only startup [--quick]
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time

from bench.report import Result
from bench.roundtrip import stroke
from mnist_demo import limits
from mnist_demo.data import IMAGE_SIZE
from testkit.canvases import png_files
from testkit.server import MB, launched, train_args
from testkit.timing import Stats

NAME = "startup"
LAUNCHES = {True: 1, False: 3}
TRAIN = {
    True: dataclasses.replace(limits.APP_DEFAULTS, epochs=1, train_size=3_000),  # a short run, same model
    False: limits.APP_DEFAULTS,
}
TRAIN_TIMEOUT_S = 300
SAMPLE_EVERY_S = 0.05
TARGET_START_S = 10.0
TARGET_IDLE_MB = 900.0
TARGET_TRAINING_MB = 250.0
MNIST_COPY_MB = 60_000 * IMAGE_SIZE * IMAGE_SIZE / MB  # the training images as uint8: 47 MB


def train_once(app, client, config, seed: int) -> dict[str, float]:
    """Run one training session to its end while sampling memory; the sample with the highest VmRSS (MB)."""
    peak = app.memory_mb()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            now = app.memory_mb()
            peak = max(peak, now, key=lambda m: m["VmRSS"])
            time.sleep(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        status = client.submit(**train_args(dataclasses.replace(config, seed=seed)), api_name="/train").result(
            timeout=TRAIN_TIMEOUT_S
        )[2]
    finally:
        done.set()
        sampler.join()
    if not status.startswith("done"):
        raise RuntimeError(f"training did not finish: {status}")
    return peak


def split(before: dict[str, float], after: dict[str, float]) -> str:
    """How a change in VmRSS divides into heap (RssAnon) and library pages (RssFile)."""
    return (
        f"of which heap (RssAnon) {after['RssAnon'] - before['RssAnon']:+.0f} MB, "
        f"file-backed (RssFile, mostly torch's shared-library code) {after['RssFile'] - before['RssFile']:+.0f} MB"
    )


def run(quick: bool) -> list[Result]:
    """The rows of this benchmark: start-up time, then memory on the last launch."""
    starts, relaunches = [], 0
    for i in range(LAUNCHES[quick]):
        last = i == LAUNCHES[quick] - 1
        with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp, launched() as app:
            starts.append(app.started_s)
            relaunches += app.attempts - 1
            if not last:
                continue
            files = png_files(tmp)
            for k in range(10):
                stroke(app.client, *files[k % len(files)])
            idle = app.memory_mb()
            config = TRAIN[quick]
            peak = train_once(app, app.client, config, seed=0)
            after_one = app.memory_mb()
            peak_two = train_once(app, app.client, config, seed=1)
            after_two = app.memory_mb()

    start = Stats.of(starts)
    run_note = (
        f"{config.model} width {config.size}, {config.epochs} epoch(s) of {config.train_size:,} images, "
        f"batch {config.batch_size}" + (" (shortened for --quick)" if quick else " (the Train tab's defaults)")
    )
    rss = {
        name: m["VmRSS"]
        for name, m in {"idle": idle, "peak": peak, "one": after_one, "two": after_two, "peak_two": peak_two}.items()
    }
    growth = rss["two"] - rss["one"]
    return [
        Result.timed(
            NAME,
            "spawn to first /predict answer",
            start,
            unit="s",
            target=f"< {TARGET_START_S:g} s",
            passed=start.median < TARGET_START_S,
            note="python app.py on a free port, polled every 50 ms; includes imports, weights and launch"
            + (f"; {relaunches} launch(es) killed by an outside signal retried" if relaunches else ""),
        ),
        Result(
            NAME,
            "RSS idle, after start-up and 10 strokes",
            rss["idle"],
            "MB",
            target=f"< {TARGET_IDLE_MB:g} MB",
            passed=rss["idle"] < TARGET_IDLE_MB,
            note=f"VmRSS of the app and its children: heap (RssAnon) {idle['RssAnon']:.0f} MB, file-backed "
            f"(RssFile) {idle['RssFile']:.0f} MB",
        ),
        Result(
            NAME,
            "RSS during a training run, minus idle",
            rss["peak"] - rss["idle"],
            "MB",
            baseline=rss["idle"],
            baseline_label="idle",
            ratio=rss["peak"] / rss["idle"],
            target=f"< {TARGET_TRAINING_MB:g} MB",
            passed=rss["peak"] - rss["idle"] < TARGET_TRAINING_MB,
            note=f"peak sampled every {SAMPLE_EVERY_S * 1e3:.0f} ms, {split(idle, peak)}; {run_note}; "
            "the first run also loads MNIST (55 MB)",
        ),
        Result(
            NAME,
            "RSS growth from a second training run",
            growth,
            "MB",
            baseline=rss["one"],
            baseline_label="after the 1st",
            ratio=rss["two"] / rss["one"],
            target=f"< {MNIST_COPY_MB:.0f} MB (one MNIST copy)",
            passed=growth < MNIST_COPY_MB,
            note=f"{split(after_one, after_two)}; 2nd run's peak {rss['peak_two']:.0f} MB; same visitor, another "
            "seed. Training runs in a worker thread and glibc keeps freed memory in per-thread malloc "
            "arenas, so some growth is the allocator's, not a copy",
        ),
    ]
