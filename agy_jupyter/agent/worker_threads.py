"""Threads for blocking user code, kept off the runtime loop and out of its default executor.

Sync tools run in a pool of their own, `RuntimeConfig.tool_threads` wide. A thread cannot be killed:
a sync tool that outlives its timeout (or whose turn was cancelled) keeps its thread until the function
returns. Such calls are tracked as "stuck"; once every tool thread is stuck a new call fails at once,
naming them, instead of queueing and timing out with a misleading message.

Sync hooks, sync approval handlers and heavy content conversion (DataFrame summaries, image encoding)
run in a second small pool. Separate from the tools, so stuck tools never hold up a hook or an
approval; separate from the loop's default executor, which also resolves host names for HTTP, so
neither can make a model call wait. Async callables stay on the loop.

Both pools copy the caller's contextvars into the thread, so a hook's print lands in its own cell.
One `WorkerThreads` per runtime, kept in the runtime's resource cache and closed with it.
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import inspect
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..runtime.errors import ToolError

RESOURCE_KEY = "agy-worker-threads"
CALLBACK_THREADS = 8  # hooks, approval handlers, content conversion: short, and few at a time


def is_async_callable(obj: Any) -> bool:
    """A coroutine function, a partial of one, or an object whose __call__ is one."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(getattr(obj, "__call__", None))


@dataclass(eq=False)
class _ToolCall:
    owner: Any  # who asked (one agent's ToolCaller): describe() lists only its own calls
    tool: str
    started: float | None = None  # time.monotonic() when a thread picked it up
    abandoned: bool = False  # the caller stopped waiting (timeout or cancel)


class WorkerThreads:
    """The runtime's tool pool (with stuck-call tracking) and its callback pool."""

    def __init__(self, tool_threads: int):
        self.tool_threads = tool_threads
        self._tools = concurrent.futures.ThreadPoolExecutor(tool_threads, thread_name_prefix="agy-tool")
        self._callbacks = concurrent.futures.ThreadPoolExecutor(CALLBACK_THREADS,
                                                                thread_name_prefix="agy-callback")
        self._lock = threading.Lock()
        self._running: set[_ToolCall] = set()

    # -- sync tools ------------------------------------------------------------------------------

    async def run_tool(self, owner: Any, tool: str, func: Callable[[], Any], limit: float) -> Any:
        """Run `func` on a tool thread within `limit` seconds; ToolError if it times out or none is free."""
        self._refuse_when_all_stuck(tool)
        call = _ToolCall(owner, tool)
        ctx = contextvars.copy_context()

        def work() -> Any:
            with self._lock:
                if call.abandoned:  # the caller gave up while the call waited for a thread
                    return None
                call.started = time.monotonic()
                self._running.add(call)
            try:
                return ctx.run(func)
            finally:
                with self._lock:
                    self._running.discard(call)

        future = self._tools.submit(work)
        try:
            async with asyncio.timeout(limit):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            if call.started is None:
                raise ToolError(tool, f"timed out after {limit:g} s waiting for a free tool thread "
                                      f"({self._busy_text()})") from None
            raise ToolError(tool, f"timed out after {limit:g} s") from None
        finally:
            with self._lock:
                call.abandoned = not future.done()
            future.cancel()  # a call that never started never will

    def _refuse_when_all_stuck(self, tool: str) -> None:
        stuck = self.stuck_calls()
        if len(stuck) < self.tool_threads:
            return
        counts = collections.Counter(call["tool"] for call in stuck)
        names = ", ".join(f"{name!r} x{n}" for name, n in counts.most_common())
        raise ToolError(tool, f"no tool thread is free: {len(stuck)} earlier calls timed out or were "
                              f"cancelled and are still running ({names}), holding all {self.tool_threads} "
                              f"tool threads; they free up when those functions return (more threads: "
                              f"RuntimeConfig(tool_threads=...))")

    def _busy_text(self) -> str:
        with self._lock:
            running = list(self._running)
        stuck = sum(call.abandoned for call in running)
        return f"{len(running)} of {self.tool_threads} busy, {stuck} of them stuck"

    def stuck_calls(self, owner: Any = None) -> list[dict[str, Any]]:
        """Calls whose caller stopped waiting but whose function still runs: {"tool", "seconds"}."""
        now = time.monotonic()
        with self._lock:
            stuck = [c for c in self._running if c.abandoned and (owner is None or c.owner is owner)]
        stuck.sort(key=lambda c: c.started or now)
        return [{"tool": c.tool, "seconds": now - (c.started or now)} for c in stuck]

    # -- hooks, approval handlers, content conversion --------------------------------------------

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Call a sync or async callable: async ones on the loop, sync ones on a callback thread."""
        if is_async_callable(func):
            result = func(*args)
        else:
            ctx = contextvars.copy_context()
            result = await asyncio.wrap_future(self._callbacks.submit(ctx.run, func, *args))
        if inspect.isawaitable(result):  # a sync function may still hand back a coroutine
            result = await result
        return result

    def close(self) -> None:
        """Stop taking work. Threads still inside a function finish it; nothing waits for them."""
        self._tools.shutdown(wait=False, cancel_futures=True)
        self._callbacks.shutdown(wait=False, cancel_futures=True)


async def call_inline(func: Callable[..., Any], *args: Any) -> Any:
    """The same contract as WorkerThreads.call, on the calling thread (for code outside a runtime)."""
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
