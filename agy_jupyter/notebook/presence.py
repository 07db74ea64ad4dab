"""Whether a front end rendered one view, and which front-end connections did.

Each view's module answers {"type": "rendered"} when it is shown; the comm message's parent header
names the sending front end's session, one per browser tab / console connection.

- An approval waits for a click only if its own view was rendered: a front end that rendered an
  earlier reply says nothing about this one (its tab may have been closed since).
- A reply's text fallback is for kernels no front end has ever rendered in (nbclient, papermill). Once
  some session has rendered a view here (`front_ends`), a reply keeps its widget even if it renders
  late: degrading it would replace a widget a live front end is about to show with plain text.
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


class FrontEnds:
    """The front-end sessions that rendered any of our views in this kernel, with when each did last."""

    def __init__(self) -> None:
        self._last_seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, session: str) -> None:
        with self._lock:
            self._last_seen[session] = time.monotonic()

    def any_seen(self) -> bool:
        with self._lock:
            return bool(self._last_seen)

    def sessions(self) -> list[str]:
        """The session ids seen, most recent last."""
        with self._lock:
            return sorted(self._last_seen, key=self._last_seen.__getitem__)


front_ends = FrontEnds()


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
        front_ends.record(session)
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
