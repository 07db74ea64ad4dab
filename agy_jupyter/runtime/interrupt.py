"""The one interrupt-aware wait: await a future so that the kernel's Interrupt button still works.

Measured (ipykernel 7.4, issue #881): SIGINT does not wake an event loop that sleeps in a plain
`await fut`, so an async cell waiting for the runtime would ignore the Interrupt button until the
reply came. Waking every POLL_INTERVAL s with `asyncio.wait({fut}, timeout=…)` lets the interrupt
land (agent task cancelled in ~23 ms). Whoever waits passes what to cancel when the wait is cancelled
or interrupted: the command's cross-thread future, or the running turn.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

POLL_INTERVAL = 0.05


async def wait_interruptibly(fut: asyncio.Future, on_interrupt: Callable[[], Any]) -> None:
    """Return once `fut` is done. If this wait is cancelled or interrupted, call `on_interrupt()`, re-raise."""
    try:
        while not fut.done():
            await asyncio.wait({fut}, timeout=POLL_INTERVAL)
    except (asyncio.CancelledError, KeyboardInterrupt):
        on_interrupt()
        raise
