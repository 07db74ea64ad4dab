"""close_stream: close a google-genai response stream that its reader left early, HTTP connection included.

The SDK's async stream is several generators deep (models -> api client -> response lines). Measured
(google-genai 3.4, httpx transport, tests/test_agent_failures.py): when the reader stops early (a blocked
prompt raises in our code, an error of ours), `aclose()` on the stream closes only the outermost generator;
the inner ones stay suspended and the connection stays open until the server ends the reply or the loop
shuts down (then "aclose(): asynchronous generator is already running" is logged). Only a cancel that lands
*inside* the innermost read unwinds every layer, each closing what it opened: that is why cancelling a turn
(its task waits in that read) closes the connection in ~0.2 ms.

So, to close: resume the stream in a task of its own, let it run into its read, and cancel it there. A stream
with chunks already buffered gives them first (read on until it has to wait; they are dropped). Only the
early exit pays for this: reading the stream through a task of its own for every chunk cost 18-30 µs of CPU
per chunk (two task switches instead of one, measured with benchmarks/bench_stream_throughput.py).
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

MAX_BUFFERED = 10_000  # chunks a stream may still hand out before it has to wait on the network


async def close_stream(chunks: AsyncIterator[Any]) -> None:
    """Close `chunks` (suspended between two chunks) and the HTTP stream under it. Never raises."""
    for _ in range(MAX_BUFFERED):
        step = asyncio.ensure_future(chunks.__anext__())
        await asyncio.sleep(0)  # the step runs until it waits: in the read, or done
        if not step.done():
            step.cancel()  # lands in the read: every layer unwinds and closes
        await asyncio.wait({step})  # wait, not await: its CancelledError is not ours
        if step.cancelled() or step.exception() is not None:  # closed by the cancel, the end, or a failure
            return
