"""The Sketchpad's stroke snapshots between upload and use, bounded in count, bytes and age.

After each stroke the page uploads the background, each layer and the composite as PNGs to the
component's `accept_blobs` server function under a fresh id, then sends the change event with that id.
Gradio keeps them in a plain dict on the component, shared by every visitor: a snapshot whose event never
comes (skipped by `always_last`, or a script that only uploads) stays until the server stops, and a layer
index of 3x10^7 made it allocate a list that long. `BlobStore` keeps what the page needs for a second.

    python -m pytest tests/test_components.py -k blob
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from mnist_demo.canvas import MAX_LAYERS

KINDS = ("background", "layer", "composite")  # what the page uploads for one stroke
MAX_PENDING = 64  # strokes waiting for their change event, all visitors together (each waits about a second)
MAX_AGE_S = 30.0  # a snapshot not used by then belongs to an event that will not come
MAX_TOTAL_BYTES = 32 * 2**20  # all pending snapshots together
MAX_ID_CHARS = 64  # the page's ids are a dozen random characters
PNG_OVERHEAD = 64 * 1024  # bytes beyond raw RGBA that a PNG of a canvas may take (headers, incompressible data)


def max_blob_bytes(canvas_size: tuple[int, int]) -> int:
    """The most one snapshot of a `canvas_size` (width, height) canvas can need: its raw RGBA and a margin."""
    width, height = canvas_size
    return 4 * width * height + PNG_OVERHEAD


@dataclass
class Pending:
    """One stroke's snapshots, as uploaded so far."""

    created: float  # clock time of its first upload
    background: bytes | None = None
    layers: list[bytes | None] = field(default_factory=list)
    composite: bytes | None = None

    @property
    def nbytes(self) -> int:
        parts = [self.background, self.composite, *self.layers]
        return sum(len(p) for p in parts if p is not None)


class BlobStore:
    """Snapshots by id, oldest dropped first beyond `max_pending` ids or `max_bytes`, and after `max_age_s`."""

    def __init__(
        self,
        max_blob_bytes: int,
        max_pending: int = MAX_PENDING,
        max_bytes: int = MAX_TOTAL_BYTES,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_blob_bytes, self.max_pending, self.max_bytes, self.max_age_s = (
            max_blob_bytes,
            max_pending,
            max_bytes,
            max_age_s,
        )
        self._clock = clock
        self._lock = threading.Lock()  # uploads and events arrive on Gradio's worker threads
        self._pending: OrderedDict[str, Pending] = OrderedDict()  # oldest first
        self._bytes = 0

    def put(self, id: object, kind: object, index: object, blob: bytes) -> None:
        """Keep one uploaded snapshot; ValueError, keeping nothing, for anything the page would not send."""
        if not isinstance(id, str) or not 0 < len(id) <= MAX_ID_CHARS:
            raise ValueError(f"a stroke id is a string of 1 to {MAX_ID_CHARS} characters")
        if kind not in KINDS:
            raise ValueError(f"a snapshot is one of {', '.join(KINDS)}")
        layer = _layer_index(index) if kind == "layer" else None
        if len(blob) > self.max_blob_bytes:
            raise ValueError(f"a snapshot of this canvas is at most {self.max_blob_bytes:,} bytes, got {len(blob):,}")
        with self._lock:
            self._expire()
            pending = self._pending.get(id) or Pending(self._clock())
            self._bytes -= pending.nbytes
            if layer is not None:
                pending.layers.extend([None] * (layer + 1 - len(pending.layers)))
                pending.layers[layer] = blob
            else:
                setattr(pending, kind, blob)
            self._pending[id] = pending
            self._bytes += pending.nbytes
            while len(self._pending) > self.max_pending or self._bytes > self.max_bytes:
                _, dropped = self._pending.popitem(last=False)
                self._bytes -= dropped.nbytes

    def pop(self, id: object) -> Pending | None:
        """The snapshots of stroke `id`, removed from the store; None when unknown, dropped or expired."""
        with self._lock:
            self._expire()
            pending = self._pending.pop(id, None) if isinstance(id, str) else None
            if pending is not None:
                self._bytes -= pending.nbytes
            return pending

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _expire(self) -> None:
        """Drop snapshots older than `max_age_s` (the oldest are first). Called with the lock held."""
        deadline = self._clock() - self.max_age_s
        while self._pending and next(iter(self._pending.values())).created < deadline:
            _, dropped = self._pending.popitem(last=False)
            self._bytes -= dropped.nbytes


def _layer_index(index: object) -> int:
    """A layer's index as the page sends it (a form field: "0", "1", ...), checked against `MAX_LAYERS`."""
    try:
        value = int(index) if isinstance(index, (int, str)) and not isinstance(index, bool) else None
    except ValueError:
        value = None
    if value is None or not 0 <= value < MAX_LAYERS:
        raise ValueError(f"a layer index is an integer from 0 to {MAX_LAYERS - 1}, got {str(index)[:20]!r}")
    return value
