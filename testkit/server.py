"""The app in a subprocess, for the benchmarks that go through HTTP: free port, first answer, memory, clean-up.

`launched()` spawns `python app.py` on a free loopback port and yields once /predict has answered; the
process group is always killed on the way out, whatever happened inside.

    python -m bench --only startup     # uses it; so do roundtrip and contention
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.canvases import drawing, upload

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 90  # generous: a loaded machine can take several times the usual start-up
CALL_TIMEOUT_S = 60  # the most one request may take before the benchmark gives up on it
POLL_S = 0.05  # between attempts while the app starts
LAUNCH_ATTEMPTS = 2  # a launch killed by someone else's signal is tried once more
MB = 1e6  # bytes; memory is reported in decimal megabytes


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(url: str):
    """A gradio_client `Client` for the app at `url`.

    ssl_verify=False because the app is plain HTTP on loopback: with the default, gradio_client builds a
    TLS context with the whole CA bundle for every request it sends (about 80 ms each on 2 busy cores, and
    several per call), which would time the client library rather than the app. No TLS is ever used here.
    """
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=False)


def train_args(config) -> dict:
    """The /train endpoint's arguments for a `TrainConfig` (the Train tab's controls, by name)."""
    return dict(
        model_name=config.model,
        size=config.size,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        optimizer=config.optimizer,
        train_size=config.train_size,
        augment=config.augment,
        seed=config.seed,
    )


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from the parent ids in /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the command name (field 2) may hold spaces: the parent id is the 2nd field after its ")"
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += parents.get(p, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by `pid` and its live children, from /proc/PID/stat."""
    ticks = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15 of stat
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory of `pid` and its children together, in MB: VmRSS, and its anonymous (heap) and
    file-backed (mostly shared-library code) parts, RssAnon and RssFile, from /proc/PID/status."""
    total = dict.fromkeys(("VmRSS", "RssAnon", "RssFile"), 0.0)
    for p in process_tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key = line.split(":", 1)[0]
            if key in total:
                total[key] += int(line.split()[1]) * 1024 / MB  # the kernel's "kB" are KiB
    return total


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of `pid` and its children together, in MB."""
    return memory_mb(pid)["VmRSS"]


@dataclass
class App:
    """A running app: its address, process and log, and how long it took to answer its first /predict."""

    url: str
    process: subprocess.Popen
    log: Path
    started_s: float  # from spawning the process to the first answered /predict
    client: object  # the gradio_client.Client that got that first answer
    attempts: int = 1  # launches it took: more than one when something else killed the first

    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def memory_mb(self) -> dict[str, float]:
        return memory_mb(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)


def _wait_for_predict(url: str, process: subprocess.Popen, log: Path, png: str, deadline: float):
    """Poll until the server answers HTTP, then until /predict answers; return the Client that got the answer."""

    def check_alive() -> None:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"app.py exited with code {process.returncode} before answering:\n{tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"app.py did not answer /predict within {START_TIMEOUT_S} s (log: {log})")

    while True:  # plain HTTP first: a Client per attempt would cost more than the polling saves
        check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(POLL_S)
    while True:
        check_alive()
        try:
            client = connect(url)
            client.submit(upload(png), "cnn", api_name="/predict").result(timeout=CALL_TIMEOUT_S)
            return client
        except Exception:  # not ready yet: connection refused, config not served, queue not started
            time.sleep(POLL_S)


def stop(process: subprocess.Popen) -> None:
    """End the app and anything it started: SIGTERM to its process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)  # the group we created with start_new_session
        except ProcessLookupError:
            return
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def running(app: App | None = None) -> Iterator[App]:
    """`app` when a caller shares one between benchmarks, else a fresh launch for this benchmark alone."""
    if app is not None:
        yield app
        return
    with launched() as fresh:
        yield fresh


@contextmanager
def launched(command: list[str] | None = None, env: dict[str, str | None] | None = None) -> Iterator[App]:
    """`python app.py` (or `command`, run from the repository root) on a free port, yielded once /predict
    answers; always stopped afterwards. `env` adds to this process's environment (None removes a name).

    A launch killed by a signal before it answers (not by us: by something else on a shared machine) is
    tried once more, said on stderr and in `App.attempts`; any other failure is raised at once.
    """
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as tmp:
        png = Path(tmp) / "first.png"
        drawing("3").save(png)
        for attempt in range(1, LAUNCH_ATTEMPTS + 1):
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            environment = {
                **os.environ,
                "GRADIO_SERVER_NAME": "127.0.0.1",
                "GRADIO_SERVER_PORT": str(port),
                "GRADIO_NUM_PORTS": "1",  # fail rather than serve on another port than the one we poll
                "GRADIO_ANALYTICS_ENABLED": "False",
                **(env or {}),
            }
            log = Path(tmp) / f"app-{attempt}.log"
            with open(log, "wb") as out:
                start = time.perf_counter()
                process = subprocess.Popen(
                    command or [sys.executable, "app.py"],
                    cwd=ROOT,
                    env={k: v for k, v in environment.items() if v is not None},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                client = _wait_for_predict(url, process, log, str(png), time.monotonic() + START_TIMEOUT_S)
                break
            except BaseException:
                stop(process)
                killed = process.returncode is not None and process.returncode < 0
                if not killed or attempt == LAUNCH_ATTEMPTS:
                    raise
                print(
                    f"app.py was killed by signal {-process.returncode} before answering; launching it again",
                    file=sys.stderr,
                )
        try:
            yield App(url, process, log, time.perf_counter() - start, client, attempt)
        finally:
            stop(process)
