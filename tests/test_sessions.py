"""ui/sessions.py: opening sessions never evicts a visitor's models and drawings; the greediest address pays first.

A small Blocks app with the app's shape (a `gr.State(Visitor())` that events read and fill) is launched
in-process with a small session capacity; scripts' sessions are opened through /gradio_api/queue/join as
the page opens them, some from other addresses (X-Forwarded-For from loopback, as behind a Space's proxy).

    python -m pytest tests/test_sessions.py
"""

from __future__ import annotations

import json
import secrets
import types

import gradio as gr
import httpx
import numpy as np
import pytest

from mnist_demo.checkpoint import Checkpoint
from mnist_demo.models import LARGEST, build_model
from mnist_demo.personal import MAX_DRAWINGS
from mnist_demo.session import MAX_OWN_MODELS, Visitor
from testkit.sketches import draw, sketchpad
from ui import sessions
from ui.sessions import Session, SessionKeeper, client_address, held_bytes, victims

CAPACITY = 20
MODEL = Checkpoint(build_model("mlp", 16).eval(), {})


def test_empty_sessions_go_first_then_the_address_with_the_most():
    s = [
        Session("visitor", 0.0, "a", 100),  # the least recently used of all, but it holds something
        *[Session(f"script{i}", 1.0 + i, "b", 0) for i in range(5)],
        *[Session(f"held{i}", 10.0 + i, "b", 10) for i in range(3)],
    ]
    assert victims(s, capacity=6, max_bytes=10**9, now=20.0, max_idle_s=100) == ["script0", "script1", "script2"]
    assert victims(s, capacity=2, max_bytes=10**9, now=20.0, max_idle_s=100)[-2:] == ["held0", "held1"]
    assert victims(s, capacity=9, max_bytes=10**9, now=20.0, max_idle_s=17.5) == ["visitor", "script0", "script1"]


def test_beyond_the_byte_budget_the_address_holding_the_most_bytes_pays():
    s = [Session("visitor", 0.0, "a", 30), *[Session(f"script{i}", 1.0 + i, "b", 20) for i in range(4)]]
    assert victims(s, capacity=100, max_bytes=70, now=5.0, max_idle_s=100) == ["script0", "script1"]


def test_the_address_is_the_peer_or_the_last_public_hop_behind_a_private_proxy():
    def scope(peer: str, forwarded: str | None = None) -> dict:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    assert client_address(scope("8.8.4.4", "9.9.9.9")) == "8.8.4.4"  # no proxy: headers ignored
    assert client_address(scope("10.0.0.2", "9.9.9.9, 8.8.4.4")) == "8.8.4.4"
    assert client_address(scope("10.0.0.2", "8.8.4.4, 10.1.2.3")) == "8.8.4.4"  # proxies' own hops
    assert client_address(scope("127.0.0.1", "not an address")) == "127.0.0.1"
    assert client_address(scope("127.0.0.1")) == "127.0.0.1"


def test_the_stated_worst_case_per_visitor_holds_for_a_full_visitor():
    visitor = Visitor()
    widest = max(LARGEST, key=lambda name: held_bytes_of_model(name))
    for _ in range(MAX_OWN_MODELS + 1):
        visitor.adopt(Checkpoint(build_model(widest, LARGEST[widest]).eval(), {}), "test")
    scribble = sketchpad(draw("8", height=0.9))  # a tall digit: the largest kept drawing
    for _ in range(MAX_DRAWINGS):
        visitor.drawings.add(scribble, 8)
    assert 0.9 * sessions.VISITOR_MAX_BYTES <= held_bytes(visitor) <= sessions.VISITOR_MAX_BYTES


def held_bytes_of_model(name: str) -> int:
    visitor = Visitor()
    visitor.adopt(Checkpoint(build_model(name, LARGEST[name]), {}), "test")
    return held_bytes(visitor)


@pytest.fixture(params=[True, False], ids=["keeper", "gradio alone"])
def app(request):
    """(url, keeper or None) of a launched app with a `gr.State(Visitor())` and `CAPACITY` sessions."""
    with gr.Blocks() as demo:
        visitor, count = gr.State(Visitor()), gr.Number()

        def hold(visitor: Visitor) -> int:
            visitor.adopt(MODEL, "test")
            return len(visitor.models)

        gr.Button().click(hold, visitor, count, api_name="hold")
        gr.Button().click(lambda v: len(v.models), visitor, count, api_name="count")
    demo.queue()
    keeper = SessionKeeper(sweep_s=3600) if request.param else None  # sweeps are called by the tests
    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        prevent_thread_lock=True,
        quiet=True,
        state_session_capacity=CAPACITY,
        app_kwargs=keeper.app_kwargs() if keeper else None,
    )
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            yield http, keeper
    finally:
        demo.close()


def call(http: httpx.Client, api_name: str, session: str, address: str | None = None):
    """Run the event `api_name` in `session` as the page does (join, then read the stream); its output."""
    config = http.get("config").json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    body = {"data": [None], "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    headers = {"x-forwarded-for": address} if address else {}
    http.post("gradio_api/queue/join", json=body, headers=headers).raise_for_status()
    with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.loads(line[5:])["output"]["data"][0]
    raise AssertionError("no answer")


def test_a_script_opening_many_sessions_evicts_no_visitors_models(app):
    http, keeper = app
    assert call(http, "hold", "visitor") == 1
    for _ in range(5 * CAPACITY):  # a script: a fresh session per request
        call(http, "count", secrets.token_hex(8), address="1.1.1.1")
    kept = call(http, "count", "visitor")
    if keeper is None:
        assert kept == 0  # Gradio alone dropped the least recently used session: the visitor's model
    else:
        assert kept == 1
        assert len(keeper.holder.session_data) <= CAPACITY
        assert keeper.addresses.get("visitor") == "127.0.0.1"


def test_sessions_full_of_models_from_one_address_evict_that_addresss_own(app):
    http, keeper = app
    if keeper is None:
        pytest.skip("the fair choice is the keeper's")
    keeper.max_bytes = 4 * held_bytes_of(MODEL)
    assert call(http, "hold", "visitor", address="8.8.4.4") == 1
    scripts = [secrets.token_hex(8) for _ in range(8)]
    for session in scripts:
        assert call(http, "hold", session, address="1.1.1.1") == 1
    dropped = keeper.sweep()
    assert dropped == scripts[:5]  # beyond 4 models' bytes: the greedy address's oldest, not the visitor's
    assert call(http, "count", "visitor", address="8.8.4.4") == 1


def held_bytes_of(checkpoint: Checkpoint) -> int:
    visitor = Visitor()
    visitor.adopt(checkpoint, "test")
    return held_bytes(visitor)


def test_one_of_the_apps_sessions_costs_gradio_at_most_the_stated_bytes():
    import tracemalloc

    from gradio.state_holder import SessionState

    import app

    def session() -> SessionState:
        state = SessionState(app.demo)
        for key, block in app.demo.blocks.items():
            if getattr(block, "stateful", False):
                state[key]  # the gr.State values, as the first event of a session makes them
        return state

    kept = [session()]  # warm up
    tracemalloc.start()
    try:
        kept += [session() for _ in range(50)]
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used / 50 <= sessions.SESSION_BYTES, used / 50


def test_what_a_session_holds_counts_every_state_value_once():
    visitor = Visitor()
    visitor.adopt(MODEL, "test")
    picture = np.zeros((100, 100, 3), np.uint8)
    watch = types.SimpleNamespace(frames=[picture, picture], cached={1: (picture, np.zeros(10))})  # shared arrays
    session = types.SimpleNamespace(state_data={1: visitor, 2: watch, 3: None})
    assert sessions.session_bytes(session) == held_bytes(visitor) + picture.nbytes + 10 * 8
    assert sessions.session_bytes(types.SimpleNamespace(state_data={2: watch})) == 0  # no model, no drawing: empty
