"""ui/gate.py: the Draw tab's bound on reads that skip Gradio's queue: how many run, wait, and per visitor.

python -m pytest tests/test_gate.py
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from ui.gate import Busy, Gate


class Work:
    """A function for the gate that blocks until released, counting how many run at once."""

    def __init__(self):
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = self.calls = 0

    def __call__(self, value):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
        self.release.wait(10)
        with self.lock:
            self.now -= 1
        return value


async def settle() -> None:
    """Give the tasks started so far time to reach the gate (and its threads time to start)."""
    for _ in range(20):
        await anyio.sleep(0.01)


def test_at_most_running_at_once_and_the_rest_wait_their_turn():
    gate, work = Gate(running=2, waiting=10, per_visitor=10), Work()
    results = []

    async def main():
        async def one(i):
            results.append(await gate.run(f"visitor {i}", work, i))

        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(one, i)
            await settle()
            assert work.now == 2  # two run, four wait
            work.release.set()

    anyio.run(main)
    assert sorted(results) == list(range(6)) and work.most == 2


def test_past_the_waiting_room_a_request_is_refused_at_once():
    gate, work = Gate(running=1, waiting=2, per_visitor=10), Work()
    refused = []

    async def main():
        async def one(i):
            try:
                await gate.run(f"visitor {i}", work, i)
            except Busy as err:
                refused.append((i, str(err), time.monotonic()))

        async with anyio.create_task_group() as tasks:
            for i in range(3):  # one runs, two wait: the gate is full
                tasks.start_soon(one, i)
            await settle()
            start = time.monotonic()
            await one(3)
            assert refused and refused[0][0] == 3 and refused[0][2] - start < 1
            work.release.set()

    anyio.run(main)
    assert "busy" in refused[0][1] and work.calls == 3


def test_one_visitor_cannot_take_every_turn():
    gate, work = Gate(running=1, waiting=10, per_visitor=2), Work()
    outcome = {}

    async def main():
        async def one(name, i):
            try:
                await gate.run(name, work, i)
                outcome[(name, i)] = "done"
            except Busy:
                outcome[(name, i)] = "refused"

        async with anyio.create_task_group() as tasks:
            for i in range(4):
                tasks.start_soon(one, "greedy", i)
            await settle()
            tasks.start_soon(one, "other", 0)  # still gets in: the greedy tab holds only its own share
            await settle()
            work.release.set()

    anyio.run(main)
    assert sorted(outcome.values()).count("refused") == 2
    assert outcome[("other", 0)] == "done"


def test_a_failing_call_gives_its_turn_back():
    gate = Gate(running=1, waiting=0, per_visitor=1)

    def fail(_):
        raise ValueError("bad drawing")

    async def main():
        for _ in range(3):  # each call would be refused as busy if the last had kept its place
            with pytest.raises(ValueError, match="bad drawing"):
                await gate.run("visitor", fail, None)
        assert await gate.run("visitor", lambda x: x + 1, 1) == 2

    anyio.run(main)
