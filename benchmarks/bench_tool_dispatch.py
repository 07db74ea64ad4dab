"""Tool-call dispatch: a trivial sync tool and a trivial MCP tool through the agent's ToolCaller, each
against the least its transport costs, measured in the same run.

  thread_hop        `await loop.run_in_executor(pool, add)`: the floor for a sync tool, which must run off
                    the loop (baseline of sync_tool)
  sync_tool         ToolCaller.run of `add(a, b)`, a plain def: policy, validation, worker thread, result
  async_tool        ToolCaller.run of an `async def add`: the ToolCaller's own cost, no thread
  mcp_stdio_session `await ClientSession.call_tool("add", ...)` on the SDK session the agent holds: the
                    floor for an MCP call over stdio (baseline of mcp_stdio_tool)
  mcp_stdio_tool    ToolCaller.run of `box__add` (tests/mcp_servers/toolbox.py over stdio)
  mcp_http_session  the same SDK call over streamable HTTP (the toolbox in its own process on 127.0.0.1)
  mcp_http_tool     ToolCaller.run of `web__add` over HTTP (baseline: mcp_http_session)

Every call runs on the runtime loop, as in a turn, and is timed alone there; no model request is made (the
ToolCaller gets the function call the model would send). Cases run in blocks whose order rotates.

    python benchmarks/bench_tool_dispatch.py [--calls 2000] [--blocks 10]
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable

import _common
from google.genai import types

import agy_jupyter as agy
from agy_jupyter.agent.turn import Turn
from agy_jupyter.runtime.stream import ChatStream
from agy_jupyter.testing import FakeGemini

TOOLBOX = _common.HERE.parent / "tests" / "mcp_servers" / "toolbox.py"
BASELINES = {"sync_tool": "thread_hop", "async_tool": "thread_hop", "mcp_stdio_tool": "mcp_stdio_session",
             "mcp_http_tool": "mcp_http_session"}
ARGS = {"a": 2, "b": 3}


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def add_async(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_toolbox() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(TOOLBOX), "http", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the HTTP toolbox did not start") from None
            time.sleep(0.05)


def cases_for(session: Any, pool: concurrent.futures.Executor) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Each case: a coroutine function making one call, to run on the runtime loop."""
    loop = session.loop
    caller = session.tool_caller
    turn = Turn(0, ChatStream(loop, label="bench"), None)
    stdio, http = (c.session for c in session.mcp.connections)

    def via_caller(name: str) -> Callable[[], Awaitable[Any]]:
        call = types.FunctionCall(id="c", name=name, args=ARGS)

        async def one() -> Any:
            turn.tool_calls.clear()  # the stream's events are dropped below, between blocks
            part = await caller.run(call, turn)
            assert part.function_response.response == {"result": 5}, part.function_response.response
        return one

    return {"thread_hop": lambda: loop.run_in_executor(pool, add, 2, 3),
            "sync_tool": via_caller("add"),
            "async_tool": via_caller("add_async"),
            "mcp_stdio_session": lambda: stdio.call_tool("add", ARGS),
            "mcp_stdio_tool": via_caller("box__add"),
            "mcp_http_session": lambda: http.call_tool("add", ARGS),
            "mcp_http_tool": via_caller("web__add")}, turn


async def time_block(one: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = _common.clock()
        await one()
        samples.append(_common.clock() - start)
    return samples


def run(calls: int, blocks: int, verbose: bool) -> dict:
    per_block = max(1, calls // blocks)
    process, url = start_http_toolbox()
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-hop")
    with FakeGemini() as fake:  # no model request is made; the key just has to exist
        os.environ.update(fake.env())
        runtime = agy.Runtime(agy.RuntimeConfig())
        try:
            agent = agy.Agent("dispatch", runtime=runtime, tools=[add, agy.tool(add_async, name="add_async")],
                              mcp_servers=[f"box={sys.executable} {TOOLBOX} stdio", f"web={url}"],
                              policies=[agy.allow_all()])
            session = runtime._session(agent.id)  # the live agent: its ToolCaller and MCP sessions
            cases, turn = cases_for(session, pool)

            def block(name: str) -> Callable[[], list[float]]:
                def run_block() -> list[float]:
                    samples = asyncio.run_coroutine_threadsafe(time_block(cases[name], per_block),
                                                               runtime.loop).result()
                    turn.stream = ChatStream(runtime.loop, label="bench")  # drop the block's events
                    return samples
                return run_block

            blocked = {name: block(name) for name in cases}
            for run_block in blocked.values():  # warm up every path (the first MCP call compiles schemas)
                run_block()
            done = _common.alternate_rounds(blocked, blocks, _common.progress_printer(verbose))
        finally:
            runtime.shutdown()
            pool.shutdown()
            process.kill()
            process.wait(5)
    micros = {name: [s * 1e6 for samples in results for s in samples] for name, results in done.items()}
    return {"benchmark": "tool_dispatch", "environment": _common.environment(),
            "params": {"calls_per_case": per_block * blocks, "blocks": blocks},
            "rows": rows_for(micros), "notes": notes_for(micros)}


def rows_for(micros: dict[str, list[float]]) -> list[dict]:
    rows = []
    for name, samples in micros.items():
        stats = _common.summarize(samples)
        baseline = BASELINES.get(name)
        ratio = _common.ratio(stats["median"], _common.summarize(micros[baseline])["median"]) if baseline else None
        rows.append(_common.row(name, "µs", stats, baseline=baseline, ratio_value=ratio))
    return rows


def notes_for(micros: dict[str, list[float]]) -> list[str]:
    median = {name: _common.summarize(samples)["median"] for name, samples in micros.items()}
    overhead = ("dispatch overhead over its floor (median − median): sync_tool "
                f"{median['sync_tool'] - median['thread_hop']:.0f} µs, mcp_stdio_tool "
                f"{median['mcp_stdio_tool'] - median['mcp_stdio_session']:.0f} µs, mcp_http_tool "
                f"{median['mcp_http_tool'] - median['mcp_http_session']:.0f} µs")
    relative = (f"an MCP call costs {median['mcp_stdio_tool'] / median['sync_tool']:.1f}× a sync tool over stdio, "
                f"{median['mcp_http_tool'] / median['sync_tool']:.1f}× over HTTP")
    return [overhead, relative]


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000, help="timed calls per case (default 2000)")
    p.add_argument("--blocks", type=int, default=10, help="blocks the calls are split into (default 10)")
    args = p.parse_args(argv)
    calls, blocks = (150, 3) if args.quick else (args.calls, args.blocks)
    result = run(calls, blocks, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
