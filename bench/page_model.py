"""The shipped models run in the page: net.js's forward pass per update in headless chromium, against torch.

Each shipped model is published to the harness page (testkit/page_model.py, ui/page_model.py's component
in a tiny Gradio app), fetched by the page once (timed: the weights' trip and decoding, with the payload's
size), then run on the ten drawn digits, preprocessed as the app does, one image per call as the page
will on each pen move: forward, softmax and the features for the map. The baseline is the same forward
and softmax in torch on one thread, batch 1, in this process, measured in turns with the page (a round
of calls in the page, then a round in torch) so that load from other jobs hits both alike.

On 2 cores shared with other jobs the wall-clock times above stretch with the load, so each model also
gets a CPU-time row: a long run of calls in the page, timed by the renderer process's CPU time from
/proc (what the page costs, whatever else runs), against torch's thread CPU time for the same calls.

The page's clock is coarsened to 0.1 ms, so a sample times enough calls in a row to last about 2 ms and
reports their mean: for the MLPs each sample is such a mean (their p95 is then a p95 of means), for the
CNN each call is long enough to be its own sample.

    python -m bench --only page_model [--quick]
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.report import Result
from mnist_demo.checkpoint import load_checkpoint
from mnist_demo.inference import prepare
from mnist_demo.segment import split_digits
from testkit.browser import chromium_missing, launch, new_page, wait_until
from testkit.canvases import sketch_values
from testkit.page_model import READY, served
from testkit.server import ROOT, cpu_seconds, process_tree
from testkit.timing import Stats, one_torch_thread
from ui.page_model import PageModels

NAME = "page_model"
MODELS = ("cnn", "mlp", "mlp-guide")  # every shipped model: weights/<name>.safetensors
ROUNDS = {True: 4, False: 10}  # turns of page, then torch; quick / full
PER_ROUND = {True: 25, False: 60}  # samples per turn
SAMPLE_MS = 2.0  # a page sample lasts at least this long (the page's clock has a 0.1 ms step)
CPU_RUN_S = {True: 0.5, False: 2.0}  # CPU time of each CPU-time run (/proc counts in 10 ms ticks)
TARGET_MS = 10.0  # the target for the CNN, per update

# Keep the digits in the page once; then time `samples` samples of `calls` forward passes each.
SETUP = """(images) => { window.benchImages = images.map((x) => Float32Array.from(x)); }"""
FETCH = """async (hash) => { const start = performance.now(); await window.mnistDemo.models.get(hash);
  return performance.now() - start; }"""
TIME = """async ([hash, samples, calls]) => {
  const net = await window.mnistDemo.models.get(hash), images = window.benchImages, times = [];
  for (let s = 0, i = 0; s < samples; s++) {
    const start = performance.now();
    for (let c = 0; c < calls; c++, i++) net.forward(images[i % images.length]);
    times.push((performance.now() - start) / calls);
  }
  return times;
}"""


def run(quick: bool) -> list[Result]:
    """Three rows per shipped model: the forward pass's wall time, its CPU time, fetching its weights."""
    reason = chromium_missing()
    if reason:
        if os.environ.get("CI"):
            raise RuntimeError(f"this benchmark runs in chromium: {reason}")
        return [Result(NAME, "not run: no chromium", math.nan, "", note=reason)]
    from playwright.sync_api import sync_playwright

    nets = {name: prepare(load_checkpoint(ROOT / "weights" / f"{name}.safetensors").model) for name in MODELS}
    images = torch.cat([split_digits(value)[0].tensor for _, value in sketch_values()])  # (10, 1, 28, 28)
    registry = PageModels()
    refs = {name: json.loads(registry.publish(net, pin=True)) for name, net in nets.items()}
    rows = []
    with served(registry) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = new_page(browser, url)
            wait_until(page, READY, why=lambda: "net.js did not load in the harness page")
            page.evaluate(SETUP, images.flatten(1).tolist())
            for name, net in nets.items():
                payload_kb = len(json.dumps(registry.payload(refs[name]["hash"]))) / 1e3
                rows += _measure(page, name, net, refs[name], payload_kb, images, quick)
        finally:
            browser.close()
    return rows


def _measure(
    page, name: str, net: torch.nn.Module, ref: dict, payload_kb: float, images: torch.Tensor, quick: bool
) -> list[Result]:
    """The forward row and the fetch row of one model."""
    fetch_ms = page.evaluate(FETCH, ref["hash"])  # the first get: the weights' trip, then decoding
    warm = page.evaluate(TIME, [ref["hash"], 5, 20])  # JIT warm-up, and the mean time of a call
    calls = max(1, math.ceil(SAMPLE_MS / max(np.median(warm), 1e-3)))
    page_ms, torch_ms = [], []
    with one_torch_thread(), torch.inference_mode():
        for i in range(3):  # torch's warm-up
            net(images[i : i + 1]).softmax(1)
        for _ in range(ROUNDS[quick]):
            page_ms += page.evaluate(TIME, [ref["hash"], PER_ROUND[quick], calls])
            for i in range(PER_ROUND[quick]):
                x = images[i % len(images)][None]  # (1, 1, 28, 28)
                start = time.perf_counter()
                net(x).softmax(1)
                torch_ms.append((time.perf_counter() - start) * 1e3)
    page_stats, torch_stats = Stats.of(page_ms), Stats.of(torch_ms)
    cpu_calls = max(1, math.ceil(CPU_RUN_S[quick] * 1e3 / page_stats.p5))
    page_cpu_ms, torch_cpu_ms = _cpu_per_call(page, net, ref["hash"], images, cpu_calls)
    label = f"{name} ({ref['kind']}, size {ref['size']})"
    return [
        Result.timed(
            NAME,
            f"page forward per update, {label}",
            page_stats,
            baseline=torch_stats.median,
            baseline_label="torch, 1 thread",
            ratio=page_stats.median / torch_stats.median,
            target=f"< {TARGET_MS:g} ms",
            passed=page_stats.median < TARGET_MS,
            note=f"net.js in headless chromium, one drawn digit per call (forward, softmax, features); "
            f"{calls} call(s) per sample; torch: the same forward + softmax, batch 1, channels-last as the app "
            f"holds it; p95 page {page_stats.p95:.2f} ms, torch {torch_stats.p95:.2f} ms; ratio = page / torch",
        ),
        Result(
            NAME,
            f"  page CPU time per update, {name}",
            page_cpu_ms,
            "ms",
            n=cpu_calls,
            baseline=torch_cpu_ms,
            baseline_label="torch CPU, 1 thread",
            ratio=page_cpu_ms / torch_cpu_ms,
            target=f"< {TARGET_MS:g} ms",
            passed=page_cpu_ms < TARGET_MS,
            note=f"the renderer's CPU time (/proc, user + system) over {cpu_calls} calls in a row, per call; "
            "torch: the thread's CPU time over as many calls; both hardly move with other jobs' load",
        ),
        Result(
            NAME,
            f"  weights to the page, {name}",
            fetch_ms,
            "ms",
            note=f"first models.get: server.page_weights over loopback, JSON of {payload_kb:,.0f} kB "
            "(base64 float32), decoded into a Net; one sample",
        ),
    ]


def renderer_pids() -> list[int]:
    """Chromium's renderer processes under this one (Playwright's driver -> chromium -> renderers)."""
    pids = []
    for pid in process_tree(os.getpid()):
        try:
            if b"--type=renderer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def _cpu_per_call(page, net: torch.nn.Module, key: str, images: torch.Tensor, calls: int) -> tuple[float, float]:
    """(page, torch) CPU milliseconds per call, each over `calls` calls in a row."""
    renderers = renderer_pids()
    if not renderers:
        raise RuntimeError("no chromium renderer process found under this one")
    before = sum(cpu_seconds(p) for p in renderers)
    page.evaluate(TIME, [key, 1, calls])
    page_ms = (sum(cpu_seconds(p) for p in renderers) - before) * 1e3 / calls
    with one_torch_thread(), torch.inference_mode():
        start = time.thread_time()
        for i in range(calls):
            net(images[i % len(images)][None]).softmax(1)
        torch_ms = (time.thread_time() - start) * 1e3 / calls
    return page_ms, torch_ms
