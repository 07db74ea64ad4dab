"""MainThread: hands work to the thread that started a reply (in a kernel: its main thread).

Widgets have no locks, and the user namespace belongs to the code running in cells: both are written
only on the kernel's main thread. The runtime thread, where a reply's events arrive, hands such work
over with `call`. In ipykernel 7 the main thread runs an asyncio loop even while a plain (sync) cell
executes, so the cell captures it with `asyncio.get_running_loop()`. Measured (ipykernel 7.4): a
`call_soon_threadsafe` callback runs ~0.4 ms later when the kernel is idle or a cell is awaiting; while
a sync cell runs it waits until that cell ends, so that cell's namespace never changes under it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)


class MainThread:
    """The thread and event loop that created this object, and the context (the cell) it ran in."""

    def __init__(self) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop here (a plain script): only direct calls from this thread work
            self.loop = None
        self.thread = threading.current_thread()
        self._context = contextvars.copy_context()  # the cell's parent header: output goes to its cell

    def call(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run fn(*args) on that thread: now if this is it, else soon on its loop. The future holds the outcome."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        if threading.current_thread() is self.thread:
            run()
        elif self.loop is None or self.loop.is_closed():
            future.set_exception(RuntimeError(f"{self.thread.name} has no event loop to run {fn!r} on"))
        else:
            try:  # a copy per call: one Context cannot be entered by two threads at once
                self.loop.call_soon_threadsafe(run, context=self._context.copy())
            except RuntimeError as exc:  # the loop closed meanwhile (kernel shutting down)
                future.set_exception(exc)
        return future

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """`call` with nobody waiting for the outcome: a failure is logged, never lost."""
        def report(future: concurrent.futures.Future) -> None:
            if not future.cancelled() and future.exception() is not None:
                log.error("agy: %r failed on %s", fn, self.thread.name, exc_info=future.exception())

        self.call(fn, *args).add_done_callback(report)


kernel_main: MainThread | None = None  # captured at %load_ext: where turns no cell started run their code


def capture_kernel_main() -> None:
    """Remember the kernel's main thread (call from it, e.g. at %load_ext)."""
    global kernel_main
    kernel_main = MainThread()
