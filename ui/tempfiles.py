"""Files the app writes for visitors to download (weights, drawing archives), owned by their session.

Each session gets one folder under a root of the app's own; a session keeps at most a few files (the
newest replace the oldest), its folder goes when the session ends (`remove`, from `demo.unload` or the
session state's `delete_callback`) or once it is older than `MAX_AGE_S`, and all sessions together hold
at most `MAX_TOTAL_BYTES` (the oldest folders go first). Sessions that never say goodbye (API scripts,
sessions Gradio evicts without a callback) are caught by the age and the total.

Gradio copies every file a handler returns into its own cache and keeps uploads there too; `DELETE_CACHE`
is the `gr.Blocks(delete_cache=...)` setting that removes those copies after the same age.

    python -m pytest tests/test_tempfiles.py
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

MAX_SESSION_FILES = 4  # one visitor's downloads kept at once: weights and drawings, with room for a change
MAX_SESSION_BYTES = 16 * 2**20  # the largest weights the app trains (a 1,024-wide MLP) are 3.2 MB
MAX_TOTAL_BYTES = 512 * 2**20  # every session's files together
MAX_AGE_S = 15 * 60  # a download link older than this may have gone
DELETE_CACHE = (60, MAX_AGE_S)  # Gradio's cache: look every minute, remove files older than MAX_AGE_S
ROOT_PREFIX = "mnist-demo-"
NO_SESSION = "no-session"  # the owner of files written outside a request (handlers called directly, tests)


def session_of(request) -> str:
    """The session that owns a request's files: Gradio's session hash (a `gr.Request`, or None outside one)."""
    return getattr(request, "session_hash", None) or NO_SESSION


class TempFiles:
    """Session folders under one root, bounded per session, in total and in age."""

    def __init__(
        self,
        root: Path | str | None = None,
        max_session_files: int = MAX_SESSION_FILES,
        max_session_bytes: int = MAX_SESSION_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.time,  # compared with file times, so wall-clock
    ):
        self._root = Path(root) if root is not None else None  # made on first use: importing the app writes nothing
        self.max_session_files, self.max_session_bytes = max_session_files, max_session_bytes
        self.max_total_bytes, self.max_age_s = max_total_bytes, max_age_s
        self._clock = clock
        self._lock = threading.Lock()  # handlers of many sessions write at once
        self._root_lock = threading.Lock()
        self._written = itertools.count()  # numbers each file's subfolder in write order (file times are coarse)

    @property
    def root(self) -> Path:
        """The folder that holds every session's folder (a fresh temporary folder unless one was given)."""
        if self._root is None:
            with self._root_lock:
                if self._root is None:
                    self._root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        return self._root  # a given root is made by the first write

    def folder(self, session: str) -> Path:
        """The folder of `session` (any string: Gradio's session hash); its name is a digest, never the string."""
        return self.root / hashlib.sha256(session.encode()).hexdigest()[:32]

    def write(self, session: str, name: str, data: bytes) -> Path:
        """`data` saved as `name` in a fresh subfolder of `session`'s folder; ValueError when over the limits."""
        if len(data) > self.max_session_bytes:
            raise ValueError(f"a file here is at most {self.max_session_bytes // 2**20} MB")
        safe = Path(name).name
        if not safe or safe in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        with self._lock:
            self._sweep()
            folder = self.folder(session)
            # Each file in a subfolder of its own: the visitor sees its plain name, and two files of the
            # same name (two exports) do not overwrite one another while a download may still be running.
            path = Path(tempfile.mkdtemp(prefix=f"{next(self._written):012d}-", dir=_mkdir(folder))) / safe
            path.write_bytes(data)
            self._trim(folder)
            self._cap_total()
        return path

    def remove(self, session: str) -> None:
        """Remove `session`'s folder and everything in it (nothing happens when it has none)."""
        with self._lock:
            shutil.rmtree(self.folder(session), ignore_errors=True)

    def sweep(self) -> None:
        """Remove files older than `max_age_s`, then the oldest sessions while over `max_total_bytes`."""
        with self._lock:
            self._sweep()

    def total_bytes(self) -> int:
        return sum(size for _, _, size in _files(self.root))

    def close(self) -> None:
        """Remove the root and everything under it (when the app stops)."""
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def _sweep(self) -> None:
        deadline = self._clock() - self.max_age_s
        for path, mtime, _ in _files(self.root):
            if mtime < deadline:
                _remove_file(path, self.root)
        self._cap_total()

    def _trim(self, folder: Path) -> None:
        """Keep `folder`'s newest `max_session_files` files within `max_session_bytes`."""
        files = sorted(_files(folder), key=lambda f: f[0].parent.name, reverse=True)  # newest first
        kept = total = 0
        for path, _, size in files:
            if kept < self.max_session_files and total + size <= self.max_session_bytes:
                kept, total = kept + 1, total + size
            else:
                _remove_file(path, self.root)

    def _cap_total(self) -> None:
        """Remove whole session folders, the least recently written first, while over `max_total_bytes`."""
        sessions = {}
        for path, mtime, size in _files(self.root):
            folder = self.root / path.relative_to(self.root).parts[0]
            newest, total = sessions.get(folder, (0.0, 0))
            sessions[folder] = (max(newest, mtime), total + size)
        total = sum(size for _, size in sessions.values())
        for folder, (_, size) in sorted(sessions.items(), key=lambda item: item[1][0]):
            if total <= self.max_total_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _files(root: Path) -> list[tuple[Path, float, int]]:
    """(path, modification time, size) of every file under `root`; files removed meanwhile are skipped."""
    found = []
    for path in root.rglob("*"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            found.append((path, stat.st_mtime, stat.st_size))
    return found


def _remove_file(path: Path, root: Path) -> None:
    """Remove `path`, then its folders up to `root` that it leaves empty."""
    path.unlink(missing_ok=True)
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:  # not empty
            break
