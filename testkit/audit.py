"""Record every network lookup and connection a Python process makes that does not stay on this machine.

`audit_env(folder)` writes a `sitecustomize.py` into `folder` and returns the environment that makes a
Python process started with it load that file first: it installs an audit hook (PEP 578) on socket
connects, sends and DNS lookups, and appends each one that leaves loopback to a log. `outbound(log)`
reads what was recorded. Used with `testkit.server.launched(env=...)` to check that hostile requests
make the app reach for nothing.

    python -m pytest tests/test_hostile.py
"""

from __future__ import annotations

import os
from pathlib import Path

LOG_ENV = "MNIST_AUDIT_LOG"  # where the hook appends its records, one a line

# Runs in the audited process before anything else. Loopback, unix sockets and numeric lookups of
# loopback are fine; any other lookup or connection is recorded with the event name and its target.
SITECUSTOMIZE = """
import ipaddress, os, sys

_fd = os.open(os.environ["{log_env}"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
_EVENTS = {{"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
           "socket.connect", "socket.sendto", "socket.sendmsg"}}

def _local(host):
    if host in (None, "", "localhost", b"localhost", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except ValueError:
        return False

def _hook(event, args):
    if event not in _EVENTS:
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if not isinstance(address, tuple):  # a unix socket's path, or no address
            return
        host, port = address[0], address[1]
    else:
        host, port = args[0], args[1] if len(args) > 1 else None
    if not _local(host):
        os.write(_fd, f"{{event}} {{host!r}} {{port!r}}\\n".encode())

sys.addaudithook(_hook)
"""


def audit_env(folder: Path | str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an audited Python process: `base` (default os.environ) plus the hook's folder and log."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(log_env=LOG_ENV))
    log = folder / "outbound.log"
    log.write_text("")
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    env[LOG_ENV] = str(log)
    return env


def outbound(env: dict[str, str]) -> list[str]:
    """What the audited process started with `env` has recorded so far: one line per outbound attempt."""
    return Path(env[LOG_ENV]).read_text().splitlines()
