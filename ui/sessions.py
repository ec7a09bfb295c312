"""Visitors' sessions kept fairly, and within a stated total: empty sessions go first, then the greediest address's.

Gradio keeps each session (a copy of every block's config, about 210 KB here, and its `gr.State` values,
among them the visitor's `session.Visitor`) in its `StateHolder`; beyond `state_session_capacity` it drops
the least recently used session, whatever it holds. A script opening 2,000 sessions therefore evicted
every visitor's models and drawings. `SessionKeeper` replaces that choice:

- beyond the capacity, the least recently used session that holds nothing (no model, no drawing) goes
  first, so opening sessions only ever pushes out empty ones; if every session holds something, the
  least recently used session of the address holding the most sessions goes;
- every `SWEEP_S`, sessions idle for `MAX_IDLE_S` are dropped, and while what all visitors hold (models,
  drawings, the arrays of their runs' maps: `state_bytes`) together exceeds `MAX_HELD_BYTES`, the least
  recently used session of the address holding the most bytes goes (a script filling sessions with
  uploaded models evicts its own first);
- a dropped session's files go too (`on_drop`, e.g. `TempFiles.remove`).

Worst case: `MAX_SESSIONS` sessions of `SESSION_BYTES`, plus `MAX_HELD_BYTES` of what visitors hold
(one visitor at most `VISITOR_MAX_BYTES`: `MAX_OWN_MODELS` of the largest model and `MAX_DRAWINGS`
drawings), overshot by at most what one `SWEEP_S` lets requests add.

A session's address is read where it joins the queue (`SessionAddressMiddleware`): the peer, or behind
a proxy on a private or loopback address (a Space's), the last public address in X-Forwarded-For, the
one the first proxy saw. The app passes `keeper.app_kwargs()` to launch, with `guard`'s:

    demo.launch(..., app_kwargs=merge(guard(demo), KEEPER.app_kwargs()))

    python -m pytest tests/test_sessions.py
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from starlette.middleware import Middleware

from mnist_demo.data import IMAGE_SIZE
from mnist_demo.models import LARGEST, build_model
from mnist_demo.personal import DRAWING_SIDE, MAX_DRAWINGS
from mnist_demo.session import MAX_OWN_MODELS, Visitor
from ui.asgi import JOIN_PATH, is_post, read_json

MAX_SESSIONS = 2000  # sessions Gradio keeps (its state_session_capacity), held or not
# Gradio's own cost of one of this app's sessions (a copy of every block's config, the empty gr.State
# values): 210 KB measured by tests/test_sessions.py (with the map of digits), which fails beyond this.
SESSION_BYTES = 256 * 2**10
MAX_HELD_BYTES = 1024 * 2**20  # what every visitor holds together: models, drawings, their runs' maps
MAX_IDLE_S = 3600  # a session unused this long is dropped, with what it holds
SWEEP_S = 2.0  # how often idle sessions and the byte budget are checked
FORWARDED = b"x-forwarded-for"
MAX_DEPTH = 8  # how deep state_bytes looks into a state value's attributes


def worst_case_bytes() -> int:
    """The most all sessions together hold (between two sweeps): Gradio's part and the visitors'."""
    return MAX_SESSIONS * SESSION_BYTES + MAX_HELD_BYTES


def _model_bytes(name: str, size: int) -> int:
    model = build_model(name, size)
    return sum(t.nbytes for t in [*model.parameters(), *model.buffers()])


# The most one visitor holds: their largest models and a full set of drawings (each the 28 x 28 image
# and the kept drawing, at most DRAWING_SIDE a side). tests/test_sessions.py checks it against a real one.
VISITOR_MAX_BYTES = MAX_OWN_MODELS * max(_model_bytes(n, s) for n, s in LARGEST.items()) + MAX_DRAWINGS * (
    IMAGE_SIZE * IMAGE_SIZE + DRAWING_SIDE * DRAWING_SIDE
)


def held_bytes(visitor: Visitor) -> int:
    """Bytes of the models and drawings `visitor` holds (their tensors and arrays)."""
    return state_bytes(visitor)


def state_bytes(value: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Bytes of the arrays, tensors and models reachable from a session's state value (a `Visitor`, the
    Train tab's `Watch` with its maps and pictures, ...), each counted once."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > MAX_DEPTH or value is None or isinstance(value, (str, bytes, int, float)):
        return len(value) if isinstance(value, bytes) else 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return value.nbytes
    if isinstance(value, torch.nn.Module):
        return sum(state_bytes(t, seen) for t in [*value.parameters(), *value.buffers()])
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    elif hasattr(value, "__dict__"):
        items = vars(value).values()
    else:
        return 0
    return sum(state_bytes(item, seen, depth + 1) for item in items)


def visitors_in(session_state: Any) -> Iterable[Visitor]:
    """The `Visitor`s among a Gradio session's state values."""
    return [v for v in getattr(session_state, "state_data", {}).values() if isinstance(v, Visitor)]


def session_bytes(session_state: Any) -> int:
    """Bytes of what a session holds: every gr.State value's arrays, tensors and models, none of them empty
    if it holds nothing of a visitor's (no model, no drawing: an empty session, the first to go)."""
    if not holds_anything(session_state):
        return 0
    seen: set[int] = set()
    return sum(state_bytes(v, seen) for v in getattr(session_state, "state_data", {}).values())


def holds_anything(session_state: Any) -> bool:
    return any(v.models or len(v.drawings) for v in visitors_in(session_state))


@dataclass(frozen=True)
class Session:
    """One session as the policy sees it."""

    key: str  # Gradio's session hash
    last_used: float  # seconds, any clock shared by all sessions
    address: str  # the client's address, "" when unknown
    nbytes: int  # what its visitor holds; 0: nothing worth keeping


def _lru_of_greediest(held: list[Session], weight: Callable[[Session], int]) -> Session:
    """The least recently used session of the address whose sessions weigh the most together."""
    totals: Counter[str] = Counter()
    for s in held:
        totals[s.address] += weight(s)
    greediest = max(totals, key=lambda a: (totals[a], a))
    return min((s for s in held if s.address == greediest), key=lambda s: s.last_used)


def victims(sessions: list[Session], capacity: int, max_bytes: int, now: float, max_idle_s: float) -> list[str]:
    """The sessions to drop, in order: idle ones; beyond `capacity` empty ones (least recently used first),
    then the least recently used of the address with the most sessions; then, while what they hold exceeds
    `max_bytes`, the least recently used of the address holding the most bytes."""
    dropped = [s.key for s in sessions if now - s.last_used > max_idle_s]
    alive = [s for s in sessions if now - s.last_used <= max_idle_s]
    empty = sorted((s for s in alive if not s.nbytes), key=lambda s: s.last_used)
    held = [s for s in alive if s.nbytes]
    excess = len(alive) - capacity
    while excess > 0 and empty:
        dropped.append(empty.pop(0).key)
        excess -= 1
    while excess > 0 and held:
        victim = _lru_of_greediest(held, lambda s: 1)
        held.remove(victim)
        dropped.append(victim.key)
        excess -= 1
    total = sum(s.nbytes for s in held)
    while total > max_bytes and held:
        victim = _lru_of_greediest(held, lambda s: s.nbytes)
        held.remove(victim)
        dropped.append(victim.key)
        total -= victim.nbytes
    return dropped


def client_address(scope: dict) -> str:
    """The client of an ASGI request: its peer, or behind a private/loopback proxy the last public address
    in X-Forwarded-For (a client can prepend what it likes there, but not what the proxies append)."""
    peer = (scope.get("client") or ("",))[0] or ""
    if not _is_local(peer):
        return peer
    forwarded = b",".join(v for k, v in scope.get("headers", []) if k.lower() == FORWARDED).decode("latin-1")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(hop).is_global:
                return hop
    return peer


def _is_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return not host  # no peer (a test client): treat as local
    return address.is_private or address.is_loopback


class SessionKeeper:
    """Chooses which of Gradio's sessions go (see the module's docstring); attached when the app starts."""

    def __init__(
        self,
        max_bytes: int = MAX_HELD_BYTES,
        max_idle_s: float = MAX_IDLE_S,
        sweep_s: float = SWEEP_S,
        on_drop: Iterable[Callable[[str], None]] = (),
    ):
        self.max_bytes, self.max_idle_s, self.sweep_s = max_bytes, max_idle_s, sweep_s
        self.on_drop = list(on_drop)
        self.addresses: dict[str, str] = {}  # session hash -> address, for sessions Gradio holds
        self.holder = None  # Gradio's StateHolder, once attached
        self._lock = threading.Lock()  # guards `addresses`

    def note(self, session: str, address: str) -> None:
        """Remember which address `session` came from (the first seen is kept)."""
        with self._lock:
            self.addresses.setdefault(session, address)

    def attach(self, holder: Any) -> None:
        """Take over `holder`'s eviction: its `update` (called on every use of a session) becomes ours."""
        self.holder = holder
        holder.update = self._update

    def _update(self, session: str) -> None:
        holder, dropped = self.holder, []
        with holder.lock:
            if session in holder.session_data:
                holder.session_data.move_to_end(session)
            while len(holder.session_data) > holder.capacity:
                victim = self._first_empty(exclude=session) or self._greediest_by_count(exclude=session)
                if victim is None:
                    break
                self._drop_locked(victim)
                dropped.append(victim)
        self._dropped(dropped)

    def _first_empty(self, exclude: str) -> str | None:
        for key, state in self.holder.session_data.items():  # least recently used first
            if key != exclude and not holds_anything(state):
                return key
        return None

    def _greediest_by_count(self, exclude: str) -> str | None:
        sessions = [
            Session(key, float(i), self.addresses.get(key, ""), 1)
            for i, key in enumerate(self.holder.session_data)
            if key != exclude
        ]
        return _lru_of_greediest(sessions, lambda s: 1).key if sessions else None

    def _drop_locked(self, session: str) -> None:
        self.holder.session_data.pop(session, None)
        self.holder.time_last_used.pop(session, None)
        with self._lock:
            self.addresses.pop(session, None)

    def _dropped(self, sessions: list[str]) -> None:
        for session in sessions:
            for callback in self.on_drop:
                with contextlib.suppress(Exception):  # a clean-up that fails must not fail a request
                    callback(session)

    def sweep(self, now: datetime.datetime | None = None) -> list[str]:
        """Drop idle sessions and, beyond the byte budget, the greediest address's; the sessions dropped."""
        holder = self.holder
        if holder is None:
            return []
        now = now or datetime.datetime.now()
        with holder.lock:
            states = list(holder.session_data.items())
            used = dict(holder.time_last_used)
        with self._lock:
            addresses = dict(self.addresses)
        sessions = [
            Session(
                key,
                (used.get(key, now) - now).total_seconds(),
                addresses.get(key, ""),
                session_bytes(state),
            )
            for key, state in states
        ]
        chosen = victims(sessions, holder.capacity, self.max_bytes, 0.0, self.max_idle_s)
        with holder.lock:
            for key in chosen:
                self._drop_locked(key)
            with self._lock:  # forget addresses of sessions Gradio no longer holds
                self.addresses = {k: a for k, a in self.addresses.items() if k in holder.session_data}
        self._dropped(chosen)
        return chosen

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            with contextlib.suppress(Exception):  # never let a sweep end the loop
                await asyncio.to_thread(self.sweep)

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        """FastAPI lifespan: attach to the app's sessions, and sweep them while it serves."""
        self.attach(app.state_holder)
        task = asyncio.create_task(self._sweep_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def app_kwargs(self) -> dict[str, Any]:
        """What launch's `app_kwargs` needs for this keeper: its middleware and its lifespan."""
        return {"middleware": [Middleware(SessionAddressMiddleware, keeper=self)], "lifespan": self.lifespan}


class SessionAddressMiddleware:
    """ASGI middleware: tells the keeper the address of each session that joins the queue."""

    def __init__(self, app, keeper: SessionKeeper):
        self.app, self.keeper = app, keeper

    async def __call__(self, scope, receive, send):
        if is_post(scope, JOIN_PATH):
            body, receive = await read_json(receive)
            session = body.get("session_hash")
            if isinstance(session, str) and session:
                self.keeper.note(session, client_address(scope))
        await self.app(scope, receive, send)


def merge_app_kwargs(*parts: dict[str, Any]) -> dict[str, Any]:
    """launch's `app_kwargs` from several sources: their middleware lists joined, one lifespan at most."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "middleware":
                merged.setdefault("middleware", []).extend(value)
            elif key in merged:
                raise ValueError(f"two parts set app_kwargs[{key!r}]")
            else:
                merged[key] = value
    return merged
