"""Streaming throughput: chunks per second through the agent loop vs the bare google-genai SDK.

Every case reads the same zero-delay SSE stream of N chunks from the same fake server:

  raw_http      httpx2 (the SDK's HTTP client) reads the body, no parsing: the server's own ceiling
  sdk_async     `client.aio.models.generate_content_stream` on a plain asyncio loop (the baseline: the
                agent loop runs this very call on its runtime loop)
  sdk_sync      `client.models.generate_content_stream`
  agent_stream  `Agent.stream(prompt)` iterated synchronously, counting TextDelta events
  agent_chat    `Agent.chat(prompt)`, the whole reply

Cases alternate within each round; the ratio is the median over rounds of case / sdk_async from the
same round, and best-vs-best compares each case's best round with sdk_async's best round. Each case
also reports this process's CPU time per chunk (all threads): with the server in its own process
that is the client's work alone, and it is steadier than the clock on a busy machine.

    python benchmarks/bench_stream_throughput.py [--sizes 2000,10000] [--rounds 7] [--server process]
"""
from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Callable

import httpx2
from google import genai
from google.genai import types

import _common
import _fake_server
from _fake_server import CHUNK_TEXT, prompt_for

import agy_jupyter as agy
from agy_jupyter.agent.events import TextDelta

BASELINE = "sdk_async"


class Clients:
    """Everything that talks to the server, created once so no case pays for connection setup."""

    def __init__(self, server: object):
        # Same HttpOptions as agy_jupyter's backend (retries off), so both sides do the same HTTP work.
        options = types.HttpOptions(base_url=server.url, retry_options=types.HttpRetryOptions(attempts=1))
        self.genai = genai.Client(api_key=server.api_key, http_options=options)
        self.config = types.GenerateContentConfig(
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
        self.http = httpx2.Client(base_url=server.url, headers={"x-goog-api-key": server.api_key})
        self.runner = asyncio.Runner()  # one loop for every sdk_async call, as the runtime has one loop
        os.environ.update({"GOOGLE_GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": server.api_key})
        self.runtime = agy.Runtime(agy.RuntimeConfig())
        self.agent = agy.Agent("throughput", runtime=self.runtime)

    def close(self) -> None:
        self.runtime.shutdown()
        self.runner.close()
        self.http.close()
        self.genai.close()


def chunk_rate(chunks: int, read: Callable[[], int], prepare: Callable[[], object] = lambda: None
               ) -> Callable[[], dict[str, float]]:
    """A case: `prepare()`, then time `read()` (which returns how many chunks it got).

    Returns chunks per second (wall clock) and this process's CPU µs per chunk, every thread included:
    CPU time is what our code costs, and a busy neighbour on the machine disturbs it less than the clock.
    """
    def case() -> dict[str, float]:
        prepare()
        start, cpu_start = _common.clock(), time.process_time()
        got = read()
        elapsed, cpu = _common.clock() - start, time.process_time() - cpu_start
        if got != chunks:
            raise AssertionError(f"expected {chunks} chunks, got {got}")
        return {"rate": chunks / elapsed, "cpu_us": cpu / chunks * 1e6}
    return case


def cases_for(clients: Clients, chunks: int) -> dict[str, Callable[[], dict[str, float]]]:
    prompt = prompt_for(chunks)
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}

    def raw_http() -> int:
        with clients.http.stream("POST", f"/v1/models/{_common.MODEL}:streamGenerateContent?alt=sse",
                                 json=body) as response:
            data = b"".join(response.iter_bytes())
        return data.count(b"data: ")

    async def sdk_async_read() -> int:
        stream = await clients.genai.aio.models.generate_content_stream(
            model=_common.MODEL, contents=prompt, config=clients.config)
        return sum([1 async for chunk in stream if chunk.text])

    def sdk_sync() -> int:
        stream = clients.genai.models.generate_content_stream(model=_common.MODEL, contents=prompt,
                                                              config=clients.config)
        return sum(1 for chunk in stream if chunk.text)

    def agent_stream() -> int:
        return sum(1 for event in clients.agent.stream(prompt) if isinstance(event, TextDelta))

    def agent_chat() -> int:
        text = clients.agent.chat(prompt).text
        return len(text) // len(CHUNK_TEXT) if text == CHUNK_TEXT * chunks else -1

    # An empty history before each turn (untimed), so the agent sends as small a request as the SDK.
    fresh_history = clients.agent.clear
    return {"raw_http": chunk_rate(chunks, raw_http),
            BASELINE: chunk_rate(chunks, lambda: clients.runner.run(sdk_async_read())),
            "sdk_sync": chunk_rate(chunks, sdk_sync),
            "agent_stream": chunk_rate(chunks, agent_stream, fresh_history),
            "agent_chat": chunk_rate(chunks, agent_chat, fresh_history)}


def paired_ratio(values: dict[str, list[float]], case: str, baseline: str) -> float:
    """Median over rounds of case / baseline measured in the same round."""
    return statistics.median(c / b for c, b in zip(values[case], values[baseline]))


def rows_for(chunks: int, results: dict[str, list[dict[str, float]]]) -> tuple[list[dict], list[str]]:
    rates = {name: [r["rate"] for r in rounds] for name, rounds in results.items()}
    # CPU per chunk, inverted so a ratio reads like the throughput ratio: > 1 means cheaper than the SDK.
    cpu = {name: [r["cpu_us"] for r in rounds] for name, rounds in results.items()}
    cpu_efficiency = {name: [1 / c for c in values] for name, values in cpu.items()}
    def compared(case: str, unit: str, name: str, values: dict[str, list[float]],
                 higher_is_better: dict[str, list[float]], spread: str) -> dict:
        if name == BASELINE:
            return _common.row(case, unit, _common.summarize(values[name]), spread=spread)
        best = max(higher_is_better[name]) / max(higher_is_better[BASELINE])
        return _common.row(case, unit, _common.summarize(values[name]), spread=spread, baseline=BASELINE,
                           ratio_value=paired_ratio(higher_is_better, name, BASELINE), best_ratio=best)

    rows = [compared(f"{name} ({chunks:,} chunks)", "chunks/s", name, rates, rates, "min") for name in results]
    rows += [compared(f"{name} CPU ({chunks:,} chunks)", "CPU µs/chunk", name, cpu, cpu_efficiency, "max")
             for name in ("sdk_async", "sdk_sync", "agent_stream", "agent_chat")]
    base_us = 1e6 / statistics.median(rates[BASELINE])
    notes = []
    for name in ("agent_stream", "agent_chat"):
        extra_cpu = statistics.median(c - b for c, b in zip(cpu[name], cpu[BASELINE]))
        notes.append(f"{chunks:,} chunks: {name} ÷ sdk_sync = {paired_ratio(rates, name, 'sdk_sync'):.2f}; "
                     f"CPU per chunk {extra_cpu:+.1f} µs vs sdk_async")
    server_us = 1e6 / statistics.median(rates["raw_http"])
    notes.append(f"{chunks:,} chunks: the server + HTTP alone take {server_us:.1f} µs per chunk "
                 f"({100 * server_us / base_us:.0f}% of sdk_async's {base_us:.1f} µs per chunk)")
    return rows, notes


def run(sizes: list[int], rounds: int, server_mode: str, verbose: bool) -> dict:
    server = _fake_server.start(server_mode)
    clients = Clients(server)
    try:
        for read in cases_for(clients, 50).values():  # warm up: imports, connections, lazy clients
            read()
        rows, notes = [], []
        for chunks in sizes:
            results = _common.alternate_rounds(cases_for(clients, chunks), rounds,
                                               _common.progress_printer(verbose))
            size_rows, size_notes = rows_for(chunks, results)
            rows += size_rows
            notes += size_notes
    finally:
        clients.close()
        server.close()
    return {"benchmark": "stream_throughput", "environment": _common.environment(),
            "params": {"sizes": sizes, "rounds": rounds, "server": server_mode, "chunk_chars": len(CHUNK_TEXT)},
            "rows": rows, "notes": notes, "goal": "agent_stream and agent_chat ≥ 0.9 × sdk_async"}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2000,10000", help="comma-separated chunk counts (default 2000,10000)")
    p.add_argument("--rounds", type=int, default=7, help="measurements of each case per size (default 7)")
    p.add_argument("--server", choices=["process", "thread"], default="process",
                   help="run the fake server in a child process (default) or a thread of this one")
    args = p.parse_args(argv)
    sizes = [200, 1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rounds = 3 if args.quick else args.rounds
    result = run(sizes, rounds, args.server, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
