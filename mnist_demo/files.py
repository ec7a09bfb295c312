"""Reading an untrusted file, or bytes already in memory, with a size limit checked before reading.

python -m pytest tests/test_checkpoint.py tests/test_personal.py
"""

from __future__ import annotations

from pathlib import Path

MB = 2**20


def read_bounded(source: bytes | bytearray | Path | str, limit: int, what: str) -> bytes:
    """`source`'s bytes; ValueError, naming `what` (e.g. "checkpoint"), when it is missing or over `limit` bytes.

    A path's size is checked from the file system first, so an oversized file is never read into memory.
    """
    if isinstance(source, (bytes, bytearray)):
        size, name = len(source), f"the {what}"
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no {what} file named {path.name}")  # not its folder: the app's are its own
        size, name = path.stat().st_size, path.name
    if size > limit:
        raise ValueError(f"{name} is {size / MB:.0f} MB; a {what} here is at most {limit // MB} MB")
    return bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
