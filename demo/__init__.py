"""Real-parts harness for City Operations: mosquitto, a real `hass`, a simulated demo park.

Used by `scripts/demo` (`python -m demo`) and by the e2e tests in `tests/e2e`.
"""

import ctypes
from pathlib import Path
import signal
import socket

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
VENV_BIN = REPO_ROOT / ".venv" / "bin"

_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: children then only stop through our own shutdown
    _LIBC = None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when its parent dies (a Popen preexec_fn).

    Keeps a crashed or SIGKILLed demo or test run from leaving brokers and hass behind.
    libc is loaded in the parent: the forked child only makes one system call.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a text file, or a note that it does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
