"""Cancel latency: from the cancel call until the server sees the client disconnect.

Each repetition starts a turn against a stalled reply (2 chunks, then silence), waits for the first
text chunk, cancels, and reads the time the fake server noticed the disconnect (it stamps
Disconnect.time with time.perf_counter in this process, the clock we read before cancelling).

  sdk_task_cancel  `task.cancel()` on a task iterating `client.aio.models.generate_content_stream`, on
                   a plain asyncio loop (the baseline: the fastest way to close the SDK's stream)
  stream_cancel    `ChatStream.cancel()` from the consuming thread (a callback onto the runtime loop)
  agent_cancel     `Agent.cancel()`, a runtime command that returns once the history is repaired

Also reported: how long until the cancel is settled for the caller (the stream's result is
available / `Agent.cancel()` returned / the cancelled task is awaited).

    python benchmarks/bench_cancel.py [--reps 20]
"""
from __future__ import annotations

import asyncio
import os
from typing import Callable

import _common

import agy_jupyter as agy
from agy_jupyter.agent.events import TextDelta
from agy_jupyter.testing import FakeGemini, Reply

BASELINE = "sdk_task_cancel"
STALLED = Reply.text("x" * 100, chunks=10).stall_after(2)
WAIT = 5.0  # seconds: far above any sane latency, so a broken cancel fails instead of hanging


class Setup:
    def __init__(self, fake: FakeGemini):
        self.fake = fake
        os.environ.update(fake.env())
        self.runtime = agy.Runtime(agy.RuntimeConfig())
        self.agent = agy.Agent("canceller", runtime=self.runtime)
        self.client = fake.client()
        self.runner = asyncio.Runner()

    def close(self) -> None:
        self.runner.close()
        self.runtime.shutdown()
        self.client.close()

    def disconnect_after(self, cancelled_at: float) -> float:
        """Seconds from `cancelled_at` until the server saw the current request's client leave."""
        gone = self.fake.wait_for_disconnect(WAIT)
        if gone is None:
            raise AssertionError(f"the server saw no disconnect within {WAIT} s of the cancel")
        if gone.request_index != len(self.fake.requests) - 1:
            raise AssertionError(f"disconnect of request {gone.request_index}, not the latest one")
        return gone.time - cancelled_at


def agent_turn_until_first_text(setup: Setup) -> agy.ChatStream:
    setup.agent.clear()  # the same small request every time
    setup.fake.enqueue(STALLED)
    stream = setup.agent.stream("go")
    for event in stream:
        if isinstance(event, TextDelta):
            return stream
    raise AssertionError("the turn ended before any text arrived")


def stream_cancel(setup: Setup) -> dict[str, float]:
    stream = agent_turn_until_first_text(setup)
    start = _common.clock()
    stream.cancel()
    response = stream.result(WAIT)
    settled = _common.clock() - start
    if not response.cancelled:
        raise AssertionError("the turn was not reported as cancelled")
    return {"disconnect": setup.disconnect_after(start), "settled": settled}


def agent_cancel(setup: Setup) -> dict[str, float]:
    stream = agent_turn_until_first_text(setup)
    start = _common.clock()
    setup.agent.cancel()  # returns once the turn has ended and the history is repaired
    settled = _common.clock() - start
    if not stream.result(WAIT).cancelled:
        raise AssertionError("the turn was not reported as cancelled")
    return {"disconnect": setup.disconnect_after(start), "settled": settled}


def sdk_task_cancel(setup: Setup) -> dict[str, float]:
    async def once() -> dict[str, float]:
        first_chunk = asyncio.Event()

        async def consume() -> None:
            stream = await setup.client.aio.models.generate_content_stream(model=_common.MODEL, contents="go")
            async for _ in stream:
                first_chunk.set()

        task = asyncio.create_task(consume())
        await first_chunk.wait()
        start = _common.clock()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        settled = _common.clock() - start
        # wait in a thread: blocking this loop could delay the socket close being measured
        disconnect = await asyncio.to_thread(setup.disconnect_after, start)
        return {"disconnect": disconnect, "settled": settled}

    setup.fake.enqueue(STALLED)
    return setup.runner.run(once())


def run(reps: int, verbose: bool) -> dict:
    with FakeGemini() as fake:
        setup = Setup(fake)
        try:
            cases: dict[str, Callable[[], dict[str, float]]] = {
                BASELINE: lambda: sdk_task_cancel(setup),
                "stream_cancel": lambda: stream_cancel(setup),
                "agent_cancel": lambda: agent_cancel(setup)}
            for case in cases.values():  # warm up: connections, lazy clients, first-call imports
                case()
            results = _common.alternate_rounds(cases, reps, _common.progress_printer(verbose))
        finally:
            setup.close()
    return {"benchmark": "cancel", "environment": _common.environment(), "params": {"reps": reps},
            "rows": rows_for(results), "goal": "disconnect ≤ 100 ms after the cancel call",
            "notes": [f"settled: {name} {_common.summarize(ms(results[name], 'settled'))['median']:.2f} ms"
                      for name in results]}


def ms(samples: list[dict[str, float]], key: str) -> list[float]:
    return [s[key] * 1e3 for s in samples]


def rows_for(results: dict[str, list[dict[str, float]]]) -> list[dict]:
    base = _common.summarize(ms(results[BASELINE], "disconnect"))["median"]
    rows = []
    for name, samples in results.items():
        stats = _common.summarize(ms(samples, "disconnect"))
        is_base = name == BASELINE
        rows.append(_common.row(f"{name} → disconnect", "ms", stats, spread="max",
                                baseline=None if is_base else BASELINE,
                                ratio_value=None if is_base else _common.ratio(stats["median"], base)))
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20, help="cancels per case (default 20)")
    args = p.parse_args(argv)
    result = run(5 if args.quick else args.reps, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
