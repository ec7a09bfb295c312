"""One stroke's round trip through the launched app: upload a composite PNG, call /predict, get the label.

The app runs as `python app.py` on a free loopback port. One client calls /predict back to back (a visitor
drawing alone), then 8 clients, each its own gradio_client `Client` (its own session) in its own thread,
call it at once (8 visitors drawing together). Every call uploads the PNG (handle_file) and waits for the
answer, as the browser does after each stroke; the browser's follow-up `explain` event is not part of
/predict and is not counted.

Two rows explain where the time goes: the same stroke sent with plain HTTP (one keep-alive httpx client:
upload, /call/predict through the queue, the SSE answer), which is what the server itself costs, and
gradio_client with its default TLS setting (see `server.connect`). The baseline of the first row is
`read_drawing` on the same drawings in this process.

    python -m bench --only roundtrip [--quick]
"""

from __future__ import annotations

import itertools
import json
import random
import tempfile
import threading
import time
from dataclasses import dataclass

import httpx

from bench.report import Result
from mnist_demo.inference import SharedModels, read_drawing
from testkit.canvases import png_files, sketch_values, upload
from testkit.server import CALL_TIMEOUT_S, ROOT, App, connect, running
from testkit.timing import Stats, one_torch_thread, repeat

NAME = "roundtrip"
CLIENTS = 8
REPEATS = {True: 20, False: 150}  # calls by the lone client, quick / full
PER_CLIENT = {True: 6, False: 40}  # calls by each of the 8 clients
STROKE_GAP_S = (0.3, 0.9)  # a paced visitor draws for this long (uniform) before each stroke is sent
TARGET_MEDIAN_MS = 60.0
TARGET_P95_MS = 150.0


def in_process_ms(n: int) -> Stats:
    """The handler's own work on the same drawings, one thread: what the round trip adds to."""
    net = SharedModels.from_folder(ROOT / "weights", ("cnn",)).get("cnn").model
    values = [v for _, v in sketch_values()]
    calls = itertools.cycle(values)
    with one_torch_thread():
        return repeat(lambda: read_drawing(net, next(calls)), n).scaled(1e3)


def stroke(client, digit: str, png: str) -> tuple[float, bool]:
    """One /predict call through gradio_client, as `client.predict` but with a timeout: (seconds, read right)."""
    start = time.perf_counter()
    answer = client.submit(upload(png), "cnn", api_name="/predict").result(timeout=CALL_TIMEOUT_S)
    return time.perf_counter() - start, answer.get("label") == digit


def raw_stroke(http: httpx.Client, url: str, digit: str, png: str, phases: list | None = None) -> tuple[float, bool]:
    """The same call in plain HTTP: upload the file, queue the event, read its answer from the SSE stream.

    `phases`, when given, gets (upload, queue, answer) seconds appended.
    """
    start = time.perf_counter()
    with open(png, "rb") as f:
        uploaded = http.post(url + "gradio_api/upload", files={"files": ("stroke.png", f, "image/png")})
    file = {"path": uploaded.raise_for_status().json()[0], "meta": {"_type": "gradio.FileData"}}
    upload_done = time.perf_counter()
    queued = http.post(
        url + "gradio_api/call/predict", json={"data": [{"background": None, "layers": [], "composite": file}, "cnn"]}
    )
    event_id = queued.raise_for_status().json()["event_id"]
    queue_done = time.perf_counter()
    event, answer = None, None
    with http.stream("GET", url + f"gradio_api/call/predict/{event_id}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                answer = json.loads(line.removeprefix("data:")) if event == "complete" else None
                break
    end = time.perf_counter()
    if phases is not None:
        phases.append((upload_done - start, queue_done - upload_done, end - queue_done))
    return end - start, bool(answer) and answer[0].get("label") == digit


@dataclass
class Crowd:
    """What `CLIENTS` clients drawing at once saw."""

    latencies: list[float]  # seconds per successful call
    right: int  # answers that read the drawn digit
    errors: list[str]  # failed calls
    wall: float  # seconds from the start line to the last call's end
    server_cpu: float  # CPU seconds the app used meanwhile
    client_cpu: float  # CPU seconds this process (the 8 clients) used meanwhile


def crowd(app: App, files: list[tuple[str, str]], per_client: int, paced: bool) -> Crowd:
    """`CLIENTS` clients drawing at once, each its own session in its own thread.

    Paced, each waits a drawing time (`STROKE_GAP_S`, random) before each stroke, as people do; otherwise
    each sends its next stroke as soon as the last is answered (a stress test: the app is saturated).
    """
    clients = [connect(app.url) for _ in range(CLIENTS)]  # connected before the clock starts
    latencies: list[float] = []
    errors: list[str] = []
    right = 0
    lock = threading.Lock()
    start_line = threading.Barrier(CLIENTS + 1)

    def visitor(k: int) -> None:
        nonlocal right
        rng = random.Random(k)  # the same pauses on every run
        start_line.wait()
        for i in range(per_client):
            if paced:
                time.sleep(rng.uniform(*STROKE_GAP_S))
            digit, png = files[(k + i) % len(files)]
            try:
                seconds, ok = stroke(clients[k], digit, png)
            except Exception as err:  # counted and reported: a failed stroke fails the target
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                continue
            with lock:
                latencies.append(seconds)
                right += ok

    threads = [threading.Thread(target=visitor, args=(k,), daemon=True) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    start_line.wait()
    start, server_cpu, client_cpu = time.perf_counter(), app.cpu_seconds(), time.process_time()
    for t in threads:
        t.join(timeout=per_client * CALL_TIMEOUT_S)
    return Crowd(
        latencies,
        right,
        errors,
        time.perf_counter() - start,
        app.cpu_seconds() - server_cpu,
        time.process_time() - client_cpu,
    )


def run(quick: bool, app: App | None = None) -> list[Result]:
    """The rows of this benchmark; `app` is a running app to use, else one is launched for it."""
    from gradio_client import Client

    n = REPEATS[quick]
    handler = in_process_ms(n)
    with (
        tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp,
        running(app) as app,
        httpx.Client(timeout=CALL_TIMEOUT_S) as http,
    ):
        files = png_files(tmp)
        default_client = Client(app.url, verbose=False)  # gradio_client as it comes: TLS setup per request
        phases: list[tuple[float, float, float]] = []  # of the plain-HTTP calls
        ways = {
            "gradio_client": lambda i: stroke(app.client, *files[i % len(files)]),
            "plain HTTP": lambda i: raw_stroke(http, app.url, *files[i % len(files)], phases),
            "default": lambda i: stroke(default_client, *files[i % len(files)]),
        }
        for i in range(3):  # warm up the server's code paths and each client's connection
            for call in ways.values():
                call(i)
        samples: dict[str, list[float]] = {k: [] for k in ways}
        right = dict.fromkeys(ways, 0)
        for i in range(n):  # in turns, so that load changes hit all three alike
            for name, call in ways.items():
                seconds, ok = call(i)
                samples[name].append(seconds)
                right[name] += ok
        crowds = {paced: crowd(app, files, PER_CLIENT[quick], paced) for paced in (True, False)}

    one, raw, default = (Stats.of(samples[k]).scaled(1e3) for k in ways)
    timed_phases = phases[3:]  # the warm-up calls left out
    upload_ms, queue_ms, answer_ms = (1e3 * Stats.of(p).median for p in zip(*timed_phases, strict=True))
    rows = [
        Result.timed(
            NAME,
            "/predict round trip, 1 client",
            one,
            baseline=handler.median,
            baseline_label="handler in-process",
            ratio=one.median / handler.median,
            target=f"median < {TARGET_MEDIAN_MS:g} ms",
            passed=one.median < TARGET_MEDIAN_MS,
            note=f"gradio_client, 280x280 composite PNG via handle_file; {right['gradio_client']}/{n} "
            "read right; ratio = round trip / in-process handler. gradio_client waits for the answer "
            "by polling every 50 ms (utils.stream_sse_v1plus), so no call through it takes much under "
            "50 ms whatever the server does: see the plain-HTTP row for the server's own cost",
        ),
        Result.timed(
            NAME,
            "  same stroke, plain HTTP",
            raw,
            baseline=one.median,
            baseline_label="gradio_client",
            ratio=raw.median / one.median,
            note=f"httpx keep-alive, the same queue; medians: upload {upload_ms:.0f} ms, "
            f"POST /gradio_api/call/predict {queue_ms:.0f} ms, SSE answer {answer_ms:.0f} ms; "
            f"{right['plain HTTP']}/{n} read right",
        ),
        Result.timed(
            NAME,
            "  same stroke, gradio_client defaults",
            default,
            baseline=one.median,
            baseline_label="gradio_client",
            ratio=default.median / one.median,
            note="Client(url) without ssl_verify=False loads the CA bundle into a new TLS context for "
            "each of its HTTP requests, even to http://; client-side cost, not the app's",
        ),
    ]
    return rows + [crowd_row(crowds[True], one, paced=True), crowd_row(crowds[False], one, paced=False)]


def crowd_row(many: Crowd, one: Stats, paced: bool) -> Result:
    """The p95 row of a crowd; the target applies to visitors drawing at a human pace."""
    name = f"/predict p95, {CLIENTS} clients drawing at once" if paced else f"  {CLIENTS} clients back to back"
    target = f"p95 < {TARGET_P95_MS:g} ms" if paced else ""
    failed = f"{len(many.errors)} failed" + (f" ({many.errors[0]})" if many.errors else "")
    if not many.latencies:
        return Result(NAME, name, float("nan"), "ms", target=target, passed=False, note=failed)
    ms, done = Stats.of(many.latencies).scaled(1e3), len(many.latencies)
    how = (
        f"each client pauses {STROKE_GAP_S[0]:g}-{STROKE_GAP_S[1]:g} s (drawing) before each stroke"
        if paced
        else "each client sends its next stroke as soon as the last is answered: a saturation test, no target"
    )
    return Result(
        NAME,
        name,
        ms.p95,
        "ms",
        ms.p5,
        ms.p95,
        ms.n,
        baseline=one.p95,
        baseline_label="p95 of 1 client",
        ratio=ms.p95 / one.p95,
        target=target,
        passed=(ms.p95 < TARGET_P95_MS and not many.errors) if paced else None,
        note=f"{how}; value is the p95 (median {ms.median:.0f} ms, max {max(ms.samples):.0f} ms); "
        f"{many.right}/{done} read right, {failed}; {done / many.wall:.1f} strokes/s served; "
        f"CPU per stroke: app {1e3 * many.server_cpu / done:.0f} ms, the {CLIENTS} clients "
        f"{1e3 * many.client_cpu / done:.0f} ms (on the same 2 cores)",
    )
