"""A public Space's load: 20 visitors drawing without pauses while 2 others train, in three rounds.

The app runs as `python app.py` in its own process. 20 clients (each its own gradio_client session)
send a stroke as soon as the last is answered; 2 trainers start a training run, then another as soon as
one finishes, until the round ends (the run in progress is cancelled then). Each round first measures the
same 20 drawers with no trainers, then with them, so that the baseline meets the same machine load.
Reported: errors of any kind (a refused or failed stroke, a run that failed), strokes' p50 and p95 with
trainers against without, and the server's memory after each round (flat after the first, which loads
MNIST and torch's training code).

`measure(command)` runs the same against another command: an older checkout's app.py, or this app with a
setting changed (VARIANTS, for finding out what the strokes wait for).

    python -m bench --only load [--quick]
    python -c "from bench.load import measure, VARIANTS; print(measure(VARIANTS['training at a lower priority']))"
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from bench.report import Result
from bench.roundtrip import stroke
from mnist_demo import limits
from testkit.canvases import png_files
from testkit.server import CALL_TIMEOUT_S, connect, launched, train_args
from testkit.timing import Stats

NAME = "load"
DRAWERS = 20
TRAINERS = 2
ROUNDS = 3
SECONDS = {True: (3.0, 6.0), False: (10.0, 30.0)}  # (drawers alone, drawers with trainers) per round
TARGET_RATIO = 2.0  # p95 with trainers / p95 without
TARGET_GROWTH_MB = 50.0  # server RSS after the last round minus after the first
SETTLE_S = 1.0  # after a round, for cancelled runs to end before memory is read
# A short run of the Train tab's CNN: several finish in a round, so trainers keep starting new ones.
TRAIN = dataclasses.replace(limits.APP_DEFAULTS, size=8, epochs=1, train_size=1000)


@dataclass
class Phase:
    """What the clients saw during one phase of a round."""

    seconds: list[float] = field(default_factory=list)  # each answered stroke's round trip
    wrong: int = 0  # strokes answered with another digit (not errors: the app answered)
    errors: list[str] = field(default_factory=list)  # refused or failed strokes and runs
    runs_done: int = 0  # training runs that finished

    @property
    def strokes_ms(self) -> Stats:
        return Stats.of(self.seconds or [float("nan")]).scaled(1e3)


def drive(drawers: list, trainers: list, files: list[tuple[str, str]], seconds: float) -> Phase:
    """`drawers` drawing back to back and `trainers` training run after run, for `seconds`."""
    phase, stop, lock = Phase(), threading.Event(), threading.Lock()

    def draw(k: int, client) -> None:
        i = k
        while not stop.is_set():
            digit, png = files[i % len(files)]
            try:
                took, right = stroke(client, digit, png)
                with lock:
                    phase.seconds.append(took)
                    phase.wrong += not right
            except Exception as err:  # every kind of failure counts; collected to report them
                with lock:
                    phase.errors.append(f"drawer {k}: {type(err).__name__}: {str(err)[:200]}")
            i += 1

    def train(k: int, client) -> None:
        seed = k
        while not stop.is_set():
            job = client.submit(**train_args(dataclasses.replace(TRAIN, seed=seed)), api_name="/train")
            while not job.done() and not stop.is_set():
                time.sleep(0.1)
            if not job.done():
                job.cancel()  # the round is over
                return
            try:
                status = job.result(timeout=CALL_TIMEOUT_S)[2]
                with lock:
                    phase.runs_done += status.startswith("done")
                    if not status.startswith("done"):
                        phase.errors.append(f"trainer {k}: run ended with {status[:200]!r}")
            except Exception as err:
                with lock:
                    phase.errors.append(f"trainer {k}: {type(err).__name__}: {str(err)[:200]}")
            seed += TRAINERS

    threads = [threading.Thread(target=draw, args=(k, c)) for k, c in enumerate(drawers)]
    threads += [threading.Thread(target=train, args=(k, c)) for k, c in enumerate(trainers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=CALL_TIMEOUT_S * 2)
    phase.errors += [f"{t.name} never returned" for t in threads if t.is_alive()]
    return phase


def app_with(setting: str) -> list[str]:
    """`python app.py` with one line of Python run first (a module constant changed)."""
    return [sys.executable, "-c", f"{setting}; import runpy; runpy.run_path('app.py', run_name='__main__')"]


VARIANTS = {
    "training at a lower priority": app_with("import ui.runner; ui.runner.TRAINING_NICE = 10"),
}


def measure(command: list[str], quick: bool = False) -> list[Result]:
    """The benchmark against `command` (run from the repository root) instead of `python app.py`."""
    return run(quick, command)


def run(quick: bool, command: list[str] | None = None) -> list[Result]:
    alone_s, loaded_s = SECONDS[quick]
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp, launched(command) as app:
        files = png_files(tmp)
        drawers = [connect(app.url) for _ in range(DRAWERS)]
        trainers = [connect(app.url) for _ in range(TRAINERS)]
        drive(drawers, [], files, 2.0)  # warm-up: every session's first call sets it up
        rounds, memory = [], [app.rss_mb()]
        for _ in range(ROUNDS):
            alone = drive(drawers, [], files, alone_s)
            loaded = drive(drawers, trainers, files, loaded_s)
            time.sleep(SETTLE_S)
            rounds.append((alone, loaded))
            memory.append(app.rss_mb())

    alone_ms = Stats.of([s for a, _ in rounds for s in a.seconds] or [float("nan")]).scaled(1e3)
    loaded_ms = Stats.of([s for _, b in rounds for s in b.seconds] or [float("nan")]).scaled(1e3)
    errors = [e for a, b in rounds for e in a.errors + b.errors]
    wrong = sum(a.wrong + b.wrong for a, b in rounds)
    ratio = loaded_ms.p95 / alone_ms.p95
    growth = memory[-1] - memory[1]
    per_round = "; ".join(
        f"round {i + 1}: p50/p95 {a.strokes_ms.median:.0f}/{a.strokes_ms.p95:.0f} ms alone, "
        f"{b.strokes_ms.median:.0f}/{b.strokes_ms.p95:.0f} ms with trainers, {len(b.seconds)} strokes, "
        f"{b.runs_done} runs done, {len(a.errors) + len(b.errors)} errors"
        for i, (a, b) in enumerate(rounds)
    )
    setting = (
        f"{DRAWERS} drawers back to back, {TRAINERS} trainers (cnn width {TRAIN.size}, {TRAIN.epochs} epoch of "
        f"{TRAIN.train_size:,} images, run after run); {ROUNDS} rounds of {alone_s:g} s alone then {loaded_s:g} s "
        "with trainers"
    )
    return [
        Result(
            NAME,
            f"errors, {DRAWERS} drawing + {TRAINERS} training",
            len(errors),
            "",
            target="0",
            passed=not errors,
            note=f"{setting}; {wrong} strokes read as another digit; first errors: {errors[:3]}",
        ),
        dataclasses.replace(
            Result.timed(
                NAME,
                "stroke p95 with trainers",
                loaded_ms,
                baseline=alone_ms.p95,
                baseline_label="p95, no trainers",
                ratio=ratio,
                target=f"ratio <= {TARGET_RATIO:g}",
                passed=ratio <= TARGET_RATIO,
                note=f"value is the p95 (median {loaded_ms.median:.0f} ms; without trainers {alone_ms.median:.0f} ms); "
                f"ratio = p95 with trainers / p95 without; {per_round}",
            ),
            value=loaded_ms.p95,
        ),
        Result(
            NAME,
            "server RSS growth, round 3 - round 1",
            growth,
            "MB",
            baseline=memory[1],
            baseline_label="after round 1",
            target=f"< {TARGET_GROWTH_MB:g} MB",
            passed=growth < TARGET_GROWTH_MB,
            note="VmRSS of the app after warm-up and after each round: "
            + ", ".join(f"{m:.0f}" for m in memory)
            + " MB",
        ),
    ]
