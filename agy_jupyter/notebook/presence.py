"""Whether a front end rendered one view, and which front-end connections did.

Presence is tracked per view, never per kernel: a front end that rendered an earlier reply says nothing
about this one (its tab may have been closed since). Each view's module answers {"type": "rendered"}
when it is shown; the comm message's parent header names the sending front end's session, one per
browser tab / console connection. An approval waits for a click only if its own view was rendered.
"""
from __future__ import annotations

import asyncio
import threading
import time
from IPython import get_ipython

_POLL = 0.02  # the event is set on the main thread; waiters on other loops look this often


def sender_session() -> str:
    """The session id of the front end whose message the kernel is handling ("" outside a kernel)."""
    kernel = getattr(get_ipython(), "kernel", None)
    parent = kernel.get_parent() if kernel is not None else {}
    return str((parent or {}).get("header", {}).get("session", ""))


class RenderedBy:
    """The front-end sessions that rendered one view, with when each did so first."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, session: str) -> None:
        """Record a "rendered" message from `session`; main thread."""
        with self._lock:
            self._sessions.setdefault(session, time.monotonic())
        self._event.set()

    @property
    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> bool:
        """True as soon as some front end rendered the view; False after `timeout` seconds without one."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._event.is_set():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True

    def __repr__(self) -> str:
        return f"<RenderedBy {self.sessions!r}>"
