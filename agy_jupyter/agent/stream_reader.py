"""StreamReader: reads a google-genai response stream in its own task, so that closing it closes the HTTP stream.

The SDK's async stream is several generators deep (models -> api client -> response lines). Measured
(google-genai 3.4, httpx transport, tests/test_agent_failures.py): when the reader stops early (a blocked
prompt raises in our code, an error of ours, a `break`), `aclose()` on the stream closes only the outermost
generator; the inner ones stay suspended and the connection stays open until the server ends the reply or
the loop shuts down (then "aclose(): asynchronous generator is already running" is logged). Only a
cancel that lands *inside* the innermost read unwinds every layer, each closing what it opened.

So the chunks are read by a task of their own that puts them on a queue and is almost always waiting in
that read; `aclose()` cancels it there. The queue is unbounded (a put never waits, so the cancel never
lands in our own code), and the consumer keeps up: it runs on the same loop.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


class StreamReader:
    """`async with StreamReader(chunks) as reader: async for chunk in reader: ...`; leaving closes the stream."""

    def __init__(self, chunks: AsyncIterator[Any]):
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._read(chunks))

    async def _read(self, chunks: AsyncIterator[Any]) -> None:
        try:
            async for chunk in chunks:
                self._queue.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, raised there as if it had read the stream itself
            self._queue.put_nowait(_End(exc))
        else:
            self._queue.put_nowait(_End())

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> Any:
        item = await self._queue.get()
        if isinstance(item, _End):
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop reading: the cancel lands in the read and every layer of the stream closes."""
        self._task.cancel()

    async def __aenter__(self) -> StreamReader:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
