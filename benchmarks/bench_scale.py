"""Many agents at once: peak memory per agent, and aggregate chunks/s against one agent, in the same run.

N agents on one runtime and one key (so one HTTP client) each stream a reply of C chunks at the same
time, through the public API (`await agent.aio.stream(prompt)`, iterated on one asyncio loop); every
turn must deliver all C TextDelta events and end without an error.

Memory (default N=100, C=1,000): each measurement runs in a fresh child process, so every run starts
from the same heap (a second run in one process reuses the first one's freed arenas and looks cheaper).
The child warms up with one agent's turn (imports, the HTTP client, pydantic validators), takes its
baseline, creates the N agents and streams. Reported over that baseline:
  rss_peak     VmHWM after resetting it (`/proc/self/clear_refs` = 5) at the baseline: the kernel's own
               peak, nothing sampled (where the reset is refused, a 5 ms sampling thread stands in)
  traced_peak  tracemalloc's peak (a separate run: tracing slows the process ~5x)
  retained     tracemalloc's figure once the turns ended and their streams were dropped: what N agents
               with one finished turn keep (their history)
`--where` prints the allocation sites that hold the most at the end of the turns (streams still held),
grouped by traceback: the tool used to find the per-agent cost.

The fake server runs in a process of its own: in ours, its 100 handler threads, buffers and request log
would be counted as the agents' (measured: 100 agents peak at +62 MB RSS with the server in the same
process, +22 MB without it).

Overhead (N = 1, 10, 100 in rotating order, in this process): aggregate chunks/s and this process's CPU
µs per chunk (all threads; the server's work is in its own process), each as a ratio against N=1 from the
same round. Runtime overhead that grows at most linearly with N keeps CPU per chunk flat: ratio ≈ 1.

    python benchmarks/bench_scale.py [--agents 1,10,100] [--chunks 1000] [--rounds 3] [--memory-runs 4]
    python benchmarks/bench_scale.py --where --memory-agents 20   # also list where the memory goes
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

import _common
import _fake_server
from _fake_server import prompt_for

import agy_jupyter as agy
from agy_jupyter.agent.events import TextDelta

BASELINE = 1  # agents
CHAT_TIMEOUT = 600.0  # 100 agents share 2 busy cores (and tracing slows them): far past the default 120 s
MB = 2 ** 20


# -- one scale run: N agents streaming at once ---------------------------------------------------

def open_runtime(url: str, api_key: str) -> agy.Runtime:
    os.environ.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": api_key})
    runtime = agy.Runtime(agy.RuntimeConfig(chat_timeout=CHAT_TIMEOUT))
    warm = agy.Agent("warm-up", runtime=runtime)  # imports, the shared client, a pooled connection
    warm.chat(prompt_for(50))
    runtime.delete(warm.id)
    return runtime


async def stream_all(agents: list[agy.Agent], chunks: int, keep: list | None = None) -> None:
    """Every agent streams `chunks` chunks at once; raise unless every turn delivered them all."""
    async def one(agent: agy.Agent) -> int:
        stream = await agent.aio.stream(prompt_for(chunks))
        deltas = 0
        async for event in stream:
            deltas += isinstance(event, TextDelta)
        if stream.error() is not None:
            raise stream.error()
        if keep is not None:
            keep.append(stream)
        return deltas

    counts = await asyncio.gather(*(one(agent) for agent in agents))
    short = [(agent.name, n) for agent, n in zip(agents, counts) if n != chunks]
    if short:
        raise AssertionError(f"{len(short)} of {len(agents)} agents did not finish: {short[:5]}")


def create_agents(runtime: agy.Runtime, count: int, tag: str) -> list[agy.Agent]:
    return [agy.Agent(f"{tag}-{i}", runtime=runtime) for i in range(count)]


def delete_agents(runtime: agy.Runtime, agents: list[agy.Agent]) -> None:
    for agent in agents:
        runtime.delete(agent.id)


# -- memory, in a child process -------------------------------------------------------------------

def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class RssPeak:
    """This process's peak RSS from now on: VmHWM after a reset, or sampling where the reset is refused."""

    def __init__(self) -> None:
        self.baseline = _status_mb("VmRSS")
        self._sampled = 0.0
        self._stop = threading.Event()
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # resets VmHWM to the current RSS
            self.method = "VmHWM"
        except OSError:
            self.method = "sampled every 5 ms"
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._sampled = max(self._sampled, _status_mb("VmRSS"))

    def over_baseline(self) -> float:
        self._stop.set()
        peak = _status_mb("VmHWM") if self.method == "VmHWM" else self._sampled
        return peak - self.baseline


def memory_probe(url: str, api_key: str, agents: int, chunks: int, trace: bool, where: int) -> dict[str, Any]:
    runtime = open_runtime(url, api_key)
    try:
        gc.collect()
        if trace:
            tracemalloc.start(4 if where else 1)  # more frames: much slower
        rss = None if trace else RssPeak()  # tracemalloc's own tables would count as RSS
        crew = create_agents(runtime, agents, "mem")
        streams: list = []
        started = time.process_time()
        asyncio.run(stream_all(crew, chunks, keep=streams))
        result: dict[str, Any] = {"agents": agents, "chunks": chunks, "cpu_s": time.process_time() - started}
        if rss is not None:
            result.update(rss_peak_mb=rss.over_baseline(), rss_method=rss.method)
        if trace:
            result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / MB
            if where:
                result["where"] = _top_sites(tracemalloc.take_snapshot(), where)
            streams.clear()
            gc.collect()
            result["retained_mb"] = tracemalloc.get_traced_memory()[0] / MB
            tracemalloc.stop()
        return result
    finally:
        runtime.shutdown()


def _top_sites(snapshot: tracemalloc.Snapshot, count: int) -> list[str]:
    """The allocation sites holding the most, by traceback; frames of tracemalloc's caller left out."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    lines = []
    for stat in snapshot.statistics("traceback")[:count]:
        frames = [f"{frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}"
                  for frame in reversed(stat.traceback)]  # innermost first
        lines.append(f"{stat.size / MB:6.2f} MB in {stat.count:7,} blocks  " + " <- ".join(frames))
    return lines


def run_memory_probe(server: Any, agents: int, chunks: int, *, trace: bool, where: int = 0) -> dict[str, Any]:
    command = [sys.executable, __file__, "--memory-probe", str(agents), "--chunks", str(chunks),
               "--url", server.url, "--key", server.api_key, *(["--trace"] if trace else []),
               *(["--where-count", str(where)] if where else [])]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- overhead, in this process --------------------------------------------------------------------

def scale_case(runtime: agy.Runtime, agents: int, chunks: int) -> Any:
    def case() -> dict[str, float]:
        crew = create_agents(runtime, agents, f"x{agents}")  # untimed, like the deletion below
        try:
            start, cpu_start = _common.clock(), time.process_time()
            asyncio.run(stream_all(crew, chunks))
            elapsed, cpu = _common.clock() - start, time.process_time() - cpu_start
        finally:
            delete_agents(runtime, crew)
        total = agents * chunks
        return {"rate": total / elapsed, "cpu_us": cpu / total * 1e6}
    return case


def overhead_rows(results: dict[int, list[dict[str, float]]], chunks: int) -> tuple[list[dict], list[str]]:
    rows, notes = [], []
    base = results[BASELINE]
    for agents, rounds in results.items():
        rates = [r["rate"] for r in rounds]
        cpu = [r["cpu_us"] for r in rounds]
        compared = agents != BASELINE
        label = f"{agents} agent{'s' if agents > 1 else ''} x {chunks:,} chunks"
        rows.append(_common.row(
            f"{label}: aggregate", "chunks/s", _common.summarize(rates), spread="min",
            baseline="1 agent" if compared else None,
            ratio_value=statistics.median(r["rate"] / b["rate"] for r, b in zip(rounds, base)) if compared else None,
            best_ratio=max(rates) / max(b["rate"] for b in base) if compared else None))
        rows.append(_common.row(
            f"{label}: CPU", "CPU µs/chunk", _common.summarize(cpu), spread="max",
            baseline="1 agent" if compared else None,
            ratio_value=statistics.median(r["cpu_us"] / b["cpu_us"] for r, b in zip(rounds, base))
            if compared else None,
            best_ratio=min(cpu) / min(b["cpu_us"] for b in base) if compared else None))
    for agents in results:
        if agents != BASELINE:
            cpu_ratio = statistics.median(r["cpu_us"] / b["cpu_us"] for r, b in zip(results[agents], base))
            notes.append(f"{agents} agents: CPU per chunk {cpu_ratio:.2f}x one agent's (1.00 = overhead grows "
                         f"linearly with the work; above 1 = faster than linearly)")
    return rows, notes


def memory_rows(rss: list[dict], traced: dict, agents: int, chunks: int) -> tuple[list[dict], list[str]]:
    label = f"{agents} agents x {chunks:,} chunks"
    peaks = [r["rss_peak_mb"] for r in rss]
    rows = [_common.row(f"{label}: RSS peak over baseline", "MB", _common.summarize(peaks), spread="max"),
            _common.row(f"{label}: tracemalloc peak", "MB", _common.summarize([traced["traced_peak_mb"]]),
                        spread="max"),
            _common.row(f"{label}: kept after the turns", "MB", _common.summarize([traced["retained_mb"]]),
                        spread="max")]
    notes = [f"memory: RSS peak {', '.join(f'{p:.1f}' for p in peaks)} MB over the baseline in {len(peaks)} "
             f"runs ({rss[0]['rss_method']}); {statistics.median(peaks) / agents:.3f} MB per agent; "
             f"tracemalloc peak {traced['traced_peak_mb']:.1f} MB "
             f"({traced['traced_peak_mb'] / agents:.3f} MB per agent); goal ≤ 40 MB at 100 agents",
             f"memory: after the turns (streams dropped) the agents keep {traced['retained_mb']:.1f} MB "
             f"({traced['retained_mb'] * 1024 / agents:.0f} KB per agent: history, config, session)"]
    notes += [f"where: {line}" for line in traced.get("where", [])]
    return rows, notes


def run(sizes: list[int], chunks: int, rounds: int, memory_runs: int, memory_agents: int, where: int,
        verbose: bool) -> dict:
    progress = _common.progress_printer(verbose)
    server = _fake_server.start("process")
    try:
        rss = []
        for index in range(memory_runs):
            rss.append(run_memory_probe(server, memory_agents, chunks, trace=False))
            if progress:
                progress(f"memory run {index + 1}: {rss[-1]}")
        traced = run_memory_probe(server, memory_agents, chunks, trace=True, where=where)
        if progress:
            progress(f"traced run: {traced}")
        runtime = open_runtime(server.url, server.api_key)
        try:
            results = _common.alternate_rounds({n: scale_case(runtime, n, chunks) for n in sizes}, rounds, progress)
        finally:
            runtime.shutdown()
    finally:
        server.close()
    rows, notes = memory_rows(rss, traced, memory_agents, chunks)
    more_rows, more_notes = overhead_rows(results, chunks)
    return {"benchmark": "scale", "environment": _common.environment(),
            "params": {"agents": sizes, "chunks": chunks, "rounds": rounds, "memory_runs": memory_runs,
                       "memory_agents": memory_agents},
            "rows": rows + more_rows, "notes": notes + more_notes,
            "goal": "≤ 40 MB over the baseline for 100 agents x 1,000 chunks, all finishing; CPU per chunk "
                    "not growing with N"}


def main(argv: list[str] | None = None) -> dict | None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--agents", default="1,10,100", help="agent counts for the overhead rounds (1 is the baseline)")
    p.add_argument("--chunks", type=int, default=1000, help="chunks each agent streams (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="overhead rounds (default 3)")
    p.add_argument("--memory-runs", type=int, default=4, help="RSS runs, each in a fresh process (default 4)")
    p.add_argument("--memory-agents", type=int, default=100, help="agents in the memory runs (default 100)")
    p.add_argument("--where", action="store_true", help="list the allocation sites holding the most memory "
                                                         "(traces 4 frames: ~30x slower, try --memory-agents 20)")
    # internal: the child process of run_memory_probe
    p.add_argument("--memory-probe", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--where-count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_probe:  # the child process of run_memory_probe: one measurement, as JSON
        print(json.dumps(memory_probe(args.url, args.key, args.memory_probe, args.chunks, args.trace,
                                      args.where_count)))
        return None
    if args.quick:
        sizes, chunks, rounds, memory_runs, memory_agents = [1, 5, 20], 200, 1, 1, 20
    else:
        sizes = [int(s) for s in args.agents.split(",")]
        chunks, rounds, memory_runs, memory_agents = args.chunks, args.rounds, args.memory_runs, args.memory_agents
    if BASELINE not in sizes:
        sizes.insert(0, BASELINE)
    result = run(sizes, chunks, rounds, memory_runs, memory_agents, 12 if args.where else 0, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
