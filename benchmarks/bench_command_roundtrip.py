"""Command round trip: `is_idle` through the runtime, against the cross-thread floor.

  floor            `asyncio.run_coroutine_threadsafe(noop(), loop).result()` to a plain loop thread: the
                   least any design that runs commands on a loop thread can cost (the baseline)
  call_soon_event  `loop.call_soon_threadsafe(event.set); event.wait()`: a bare callback, no coroutine
  is_idle_sync     `runtime.is_idle(agent)` from a plain thread
  floor_async      `await asyncio.wrap_future(run_coroutine_threadsafe(noop(), loop))` from another loop
  is_idle_async    `await runtime.aio.is_idle(agent)` from another loop

Calls run in blocks; the order of the cases rotates from block to block. Each call is timed alone.

    python benchmarks/bench_command_roundtrip.py [--calls 5000] [--blocks 10]
"""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Callable

import _common

import agy_jupyter as agy
from agy_jupyter.testing import FakeGemini

FLOOR = "floor"


class PlainLoop:
    """A loop in a daemon thread with nothing else on it: where the floor's coroutines run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="plain-loop", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def noop() -> None:
    pass


def sync_cases(plain: asyncio.AbstractEventLoop, runtime: agy.Runtime, agent_id: int
               ) -> dict[str, Callable[[], object]]:
    def call_soon_event() -> None:
        done = threading.Event()
        plain.call_soon_threadsafe(done.set)
        done.wait()

    return {FLOOR: lambda: asyncio.run_coroutine_threadsafe(noop(), plain).result(),
            "call_soon_event": call_soon_event,
            "is_idle_sync": lambda: runtime.is_idle(agent_id)}


def async_cases(plain: asyncio.AbstractEventLoop, runtime: agy.Runtime, agent_id: int
                ) -> dict[str, Callable[[], object]]:
    async def floor_async() -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(noop(), plain))

    return {"floor_async": floor_async, "is_idle_async": lambda: runtime.aio.is_idle(agent_id)}


async def time_awaits(call: Callable[[], object], count: int) -> list[float]:
    """Seconds taken by each of `count` awaits of `call()`, on the calling loop."""
    samples = []
    for _ in range(count):
        start = _common.clock()
        await call()
        samples.append(_common.clock() - start)
    return samples


def run(calls: int, blocks: int, verbose: bool) -> dict:
    per_block = max(1, calls // blocks)
    plain = PlainLoop()
    with FakeGemini() as fake:  # no command here reaches the network; the key just has to exist
        os.environ.update(fake.env())
        runtime = agy.Runtime(agy.RuntimeConfig())
        agent = agy.Agent("roundtrip", runtime=runtime)
        caller = asyncio.Runner()  # "another event loop": a kernel cell's loop, say
        try:
            cases = {name: (lambda call=call: _common.time_calls(call, per_block))
                     for name, call in sync_cases(plain.loop, runtime, agent.id).items()}
            cases.update({name: (lambda call=call: caller.run(time_awaits(call, per_block)))
                          for name, call in async_cases(plain.loop, runtime, agent.id).items()})
            for case in cases.values():  # warm up every path once
                case()
            blocks_done = _common.alternate_rounds(cases, blocks, _common.progress_printer(verbose))
        finally:
            caller.close()
            runtime.shutdown()
            plain.close()
    micros = {name: [s * 1e6 for block in results for s in block] for name, results in blocks_done.items()}
    return {"benchmark": "command_roundtrip", "environment": _common.environment(),
            "params": {"calls_per_case": per_block * blocks, "blocks": blocks},
            "rows": rows_for(micros), "notes": notes_for(micros)}


def rows_for(micros: dict[str, list[float]]) -> list[dict]:
    floor = _common.summarize(micros[FLOOR])
    rows = []
    for name, samples in micros.items():
        stats = _common.summarize(samples)
        rows.append(_common.row(name, "µs", stats, baseline=None if name == FLOOR else FLOOR,
                                ratio_value=None if name == FLOOR else _common.ratio(stats["median"],
                                                                                       floor["median"])))
    return rows


def notes_for(micros: dict[str, list[float]]) -> list[str]:
    def ratio_at(case: str, baseline: str, q: float) -> float:
        return _common.percentile(micros[case], q) / _common.percentile(micros[baseline], q)

    return [f"is_idle_async ÷ floor_async = {ratio_at('is_idle_async', 'floor_async', 50):.2f} "
            "(the async form against the async floor)",
            f"p99 ÷ floor's p99: is_idle_sync {ratio_at('is_idle_sync', FLOOR, 99):.2f}, "
            f"is_idle_async {ratio_at('is_idle_async', FLOOR, 99):.2f}"]


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=5000, help="timed calls per case (default 5000)")
    p.add_argument("--blocks", type=int, default=10, help="blocks the calls are split into (default 10)")
    args = p.parse_args(argv)
    calls, blocks = (500, 5) if args.quick else (args.calls, args.blocks)
    result = run(calls, blocks, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
