"""ChatStream: events of one running turn, produced on the runtime loop, consumed from any thread or loop.

The producer (the agent's turn task) calls `emit`, then `finish` or `fail`, always on the runtime loop.
Consumers iterate synchronously (a plain thread), asynchronously (any event loop, e.g. a kernel cell),
or register a listener that runs on the runtime loop (widgets that want no thread hop). Every
consumer sees every event, in order; a wake-up drains all events that arrived meanwhile.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from typing import Any, AsyncIterator, Callable, Iterator

from .errors import RuntimeClosed, Timeout
from .interrupt import POLL_INTERVAL, wait_interruptibly

log = logging.getLogger(__name__)


class ChatStream:
    """Handle on one running turn: iterate its events, await its result, or cancel it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, label: str = "chat"):
        self.label = label
        self._loop = loop
        self._events: list[Any] = []
        self._cond = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._listeners: list[tuple[Callable[[Any], Any], contextvars.Context]] = []
        self._done_callbacks: list[tuple[Callable[["ChatStream"], Any], contextvars.Context]] = []
        self._result: concurrent.futures.Future = concurrent.futures.Future()
        self._task: asyncio.Task | None = None
        self._cancel_requested = False

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<ChatStream {self.label} {state}, {len(self._events)} events>"

    # -- producer side (runtime loop only) -------------------------------------------------------

    def attach_task(self, task: asyncio.Task) -> None:
        self._task = task
        if self._cancel_requested:
            task.cancel()

    def emit(self, event: Any) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)
        for listener, ctx in self._listeners:
            ctx.run(listener, event)

    def finish(self, result: Any) -> None:
        self._settle(lambda: self._result.set_result(result))

    def fail(self, error: BaseException) -> None:
        self._settle(lambda: self._result.set_exception(error))

    def _settle(self, set_outcome: Callable[[], None]) -> None:
        with self._cond:
            if self._result.done():
                return
            set_outcome()
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback, ctx in callbacks:
            try:
                ctx.run(callback, self)
            except Exception:  # one broken callback must not keep the others from running
                log.exception("agy: a ChatStream done-callback failed")

    # -- consumer side (any thread) --------------------------------------------------------------

    @property
    def events(self) -> list[Any]:
        """Every event so far (a copy)."""
        with self._cond:
            return list(self._events)

    def done(self) -> bool:
        return self._result.done()

    def error(self) -> BaseException | None:
        """The turn's error once it ended with one; None while running or after success."""
        return self._result.exception() if self._result.done() and not self._result.cancelled() else None

    def add_done_callback(self, callback: Callable[["ChatStream"], Any]) -> None:
        """Call `callback(stream)` on the runtime loop, in the caller's context, once the turn ends."""
        ctx = contextvars.copy_context()

        def register() -> None:
            if self._result.done():
                ctx.run(callback, self)
            else:
                self._done_callbacks.append((callback, ctx))

        self._call_on_loop(register)

    def add_listener(self, listener: Callable[[Any], Any], *, replay: bool = True) -> None:
        """Call `listener(event)` on the runtime loop for each event, in the caller's context."""
        ctx = contextvars.copy_context()

        def register() -> None:
            if replay:
                for event in list(self._events):
                    ctx.run(listener, event)
            self._listeners.append((listener, ctx))

        self._call_on_loop(register)

    def cancel(self) -> None:
        """Cancel the turn: its task is cancelled on the runtime loop, which closes the HTTP stream."""
        self._cancel_requested = True
        self._call_on_loop(lambda: self._task.cancel() if self._task is not None else None)

    def _call_on_loop(self, fn: Callable[[], Any]) -> None:
        if _running_loop() is self._loop:
            fn()
        elif self._loop.is_closed():
            return
        else:
            try:
                self._loop.call_soon_threadsafe(fn)
            except RuntimeError:  # loop closed between the check and the call
                pass

    def __iter__(self) -> Iterator[Any]:
        """Block the calling thread for each event. Ctrl-C / KeyboardInterrupt cancels the turn."""
        index = 0
        try:
            while True:
                with self._cond:
                    while index >= len(self._events) and not self._result.done():
                        self._cond.wait(POLL_INTERVAL)  # a blocked thread still sees Ctrl-C
                    batch = self._events[index:]
                    index += len(batch)
                    # finish() runs after the last emit(), so a done result means no more events
                    finished = self._result.done() and index >= len(self._events)
                yield from batch
                if finished:
                    return
        except KeyboardInterrupt:
            self.cancel()
            raise

    async def __aiter__(self) -> AsyncIterator[Any]:
        """Await each event from any event loop. Cancelling the awaiting task cancels the turn."""
        loop = asyncio.get_running_loop()
        index = 0
        while True:
            with self._cond:
                batch = self._events[index:]
                index += len(batch)
                finished = self._result.done() and index >= len(self._events)
                waiter = None
                if not batch and not finished:
                    waiter = loop.create_future()
                    self._async_waiters.append((loop, waiter))
            if waiter is not None:
                await wait_interruptibly(waiter, self.cancel)
                continue
            for event in batch:
                yield event
            if finished:
                return

    def result(self, timeout: float | None = None) -> Any:
        """Block until the turn ends; return its result or raise its error."""
        try:
            return self._result.result(timeout)
        except concurrent.futures.TimeoutError:
            raise Timeout(f"waiting for {self.label}", timeout or 0.0) from None
        except KeyboardInterrupt:
            self.cancel()
            raise

    async def aresult(self) -> Any:
        """Await the turn's result from any event loop; cancelling the await cancels the turn."""
        wrapped = asyncio.wrap_future(self._result)
        await wait_interruptibly(wrapped, self.cancel)
        return wrapped.result()

    def __await__(self):
        return self.aresult().__await__()

    def close_unfinished(self, cause: BaseException | str) -> None:
        """Fail a stream whose runtime went away, so no consumer waits forever."""
        text = repr(cause) if isinstance(cause, BaseException) else cause
        self.fail(RuntimeClosed(f"the runtime closed while {self.label} was running ({text})", cause=cause))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> None:
    def set_done() -> None:
        if not fut.done():
            fut.set_result(None)

    if _running_loop() is loop:
        set_done()
        return
    try:
        loop.call_soon_threadsafe(set_done)
    except RuntimeError:  # the consumer's loop is closed: nobody is waiting any more
        pass
