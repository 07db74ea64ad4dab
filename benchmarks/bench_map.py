"""agent.map: rows per second against a bare asyncio loop, under a quota, and its memory for a large map.

- `throughput_cN`: `agent.map(rows, template, concurrency=N)` against the baseline `bare_cN`: the loop users
  write by hand, `asyncio.gather` over `client.aio.models.generate_content` under an `asyncio.Semaphore(N)`,
  on the same google-genai client settings. Both ask the same fake server (a child process, so its work is
  not on our GIL) that answers every request after a fixed latency. Goal: >= 0.9 of the bare loop's rate.
- `quota`: the same map against a server that allows N requests per window (a fixed window; over it, a 429
  whose retryDelay is the rest of the window, as Gemini's per-minute quota does), against the ideal N/window.
- `memory`: peak RSS of a process that builds a frame of R rows and maps it (zero latency), minus the RSS
  before the frame, over the frame's own size (`memory_usage(deep=True)`), in a fresh child process.

    python benchmarks/bench_map.py [--latency 0.25] [--rounds 2] [--memory-rows 100000]
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import _common

from agy_jupyter.testing import FakeGemini, Reply

CONCURRENCIES = (1, 8, 32)


# -- the server (a child process: `bench_map.py --serve LATENCY QUOTA WINDOW`) --------------------------

class FixedWindowQuota:
    """N requests per window; over it a 429 whose retryDelay is the rest of the window."""

    def __init__(self, per_window: int, window: float, latency: float):
        self.per_window, self.window, self.latency = per_window, window, latency
        self._lock = threading.Lock()
        self._start: float | None = None  # the first window opens with the first request
        self._used = 0

    def __call__(self, request) -> Reply:
        with self._lock:
            now = time.monotonic()
            if self._start is None:
                self._start = now
            if now - self._start >= self.window:
                self._start, self._used = now - (now - self._start) % self.window, 0
            if self.per_window and self._used >= self.per_window:
                rest = self.window - (now - self._start)
                return Reply.error(429, retry_delay=round(rest, 3) + 0.001, quota_id="RequestsPerWindow",
                                   quota_value=self.per_window)
            self._used += 1
        return Reply.echo(ttft=self.latency)


def serve(latency: float, per_window: int, window: float) -> None:
    from agy_jupyter.testing import fake_gemini
    fake_gemini._Handler.disable_nagle_algorithm = True  # see _fake_server.py: Nagle adds ~40 ms per request
    with FakeGemini(default=FixedWindowQuota(per_window, window, latency)) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()


class Server:
    def __init__(self, latency: float, per_window: int = 0, window: float = 1.0):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(latency), str(per_window), str(window)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.proc.kill()
            raise RuntimeError(f"the fake server did not start (printed {self.url!r})")

    def env(self) -> dict[str, str]:
        from agy_jupyter.testing.fake_gemini import DEFAULT_API_KEY
        return {"GEMINI_API_KEY": DEFAULT_API_KEY, "GOOGLE_GEMINI_BASE_URL": self.url}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


# -- the cases --------------------------------------------------------------------------------------

def bare_loop(client, prompts: list[str], concurrency: int) -> float:
    """Rows per second of the hand-written loop: gather + semaphore over generate_content."""
    async def run() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> str:
            async with gate:
                response = await client.aio.models.generate_content(model=_common.MODEL, contents=prompt)
                return response.text
        answers = await asyncio.gather(*(one(p) for p in prompts))
        assert all(answers)
    started = _common.clock()
    asyncio.run(run())
    return len(prompts) / (_common.clock() - started)


def map_rows(agent, rows: list[dict], template: str, concurrency: int) -> float:
    started = _common.clock()
    result = agent.map(rows, template, concurrency=concurrency, progress=False)
    elapsed = _common.clock() - started
    failed = [r["error"] for r in result if r["error"]]
    assert not failed, failed[:3]
    return len(rows) / elapsed


def throughput(latency: float, rounds: int, rows_per_slot: int, verbose: bool) -> list[dict]:
    from agy_jupyter import Agent
    server = Server(latency)
    os.environ.update(server.env())
    try:
        agent = Agent("bench-map")
        from google import genai
        client = genai.Client()
        results: dict[str, list[float]] = {}
        counter = iter(range(10**9))
        warm = [{"text": f"warm-up {i}"} for i in range(8)]  # the first map opens the store, the client, ...
        map_rows(agent, warm, "Warm up: {text}", 4)
        bare_loop(client, [row["text"] for row in warm], 4)
        for index in range(rounds):
            for concurrency in CONCURRENCIES:
                count = max(20, rows_per_slot * concurrency)
                rows = [{"text": f"ticket {i}"} for i in range(count)]
                cases = {
                    f"bare_c{concurrency}": lambda: bare_loop(client, [f"Classify: ticket {i}" for i in range(count)],
                                                              concurrency),
                    # a new template each time: the store has no finished rows for it (the lookup is still paid)
                    f"map_c{concurrency}": lambda: map_rows(agent, rows, f"Classify (run {next(counter)}): {{text}}",
                                                            concurrency)}
                for name in _common.rotated(list(cases), index):
                    results.setdefault(name, []).append(cases[name]())
                    if verbose:
                        print(f"  .. round {index + 1} {name}: {results[name][-1]:.1f} rows/s", file=sys.stderr)
    finally:
        server.close()
    rows_out = []
    for concurrency in CONCURRENCIES:
        bare, mapped = results[f"bare_c{concurrency}"], results[f"map_c{concurrency}"]
        base = _common.summarize(bare)
        rows_out.append(_common.row(f"bare gather, concurrency {concurrency}", "rows/s", base, spread="min"))
        stats = _common.summarize(mapped)
        rows_out.append(_common.row(f"agent.map, concurrency {concurrency}", "rows/s", stats, spread="min",
                                    baseline=f"bare gather, concurrency {concurrency}",
                                    ratio_value=stats["median"] / base["median"], best_ratio=max(mapped) / max(bare)))
    return rows_out


def quota(per_window: int, window: float, count: int, concurrency: int, verbose: bool) -> tuple[dict, str]:
    from agy_jupyter import Agent
    server = Server(0.0, per_window, window)
    os.environ.update(server.env())
    try:
        agent = Agent("bench-quota")
        rows = [{"text": f"ticket {i}"} for i in range(count)]
        rate = map_rows(agent, rows, f"Classify under quota ({time.time()}): {{text}}", concurrency)
    finally:
        server.close()
    ideal = per_window / window
    # the best any client can do: the first window opens with the first request, so `count` requests need
    # ceil(count / N) - 1 whole windows plus one request's time; over many windows this tends to N/window
    best = count / max(window * (math.ceil(count / per_window) - 1), 1e-9)
    stats = _common.summarize([rate])
    row = _common.row(f"agent.map under {per_window} requests / {window:g} s ({per_window * 60 / window:g} per "
                      f"minute), {count} rows, concurrency {concurrency}", "rows/s", stats, spread="min",
                      baseline="ideal N/window", ratio_value=rate / ideal, best_ratio=rate / best)
    return row, (f"quota: {rate:.2f} rows/s against the ideal N/window {ideal:.2f} ({rate / ideal:.2f}) and the best "
                 f"possible for {count} rows in fixed windows, {best:.2f} ({rate / best:.2f}, best-vs-best column)")


MEMORY_CHILD = r'''
import json, os, resource, sys
import pandas as pd
from agy_jupyter import Agent
rows = int(sys.argv[1])
agent = Agent("bench-memory")
agent.map([{"text": "warm-up"}], "Classify: {text}", progress=False)  # the client, the store, the threads
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
frame = pd.DataFrame({"text": [f"ticket {i}: the printer on floor {i % 7} jams after {i % 13} pages, again" for i in range(rows)],
                      "stars": [i % 5 for i in range(rows)]})
size = int(frame.memory_usage(deep=True).sum())
after_frame = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
result = agent.map(frame, "Classify: {text} ({stars} stars)", concurrency=32, progress=False)
assert result["error"].isna().all()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "frame_bytes": size, "rss_before": before, "rss_after_frame": after_frame,
                  "rss_peak": peak}))
'''


def memory(count: int) -> tuple[dict, str]:
    server = Server(0.0)
    try:
        with tempfile.TemporaryDirectory() as data:
            env = {**os.environ, **server.env(), "JUPYTER_DATA_DIR": data}
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(count)], env=env, check=True,
                                 capture_output=True, text=True).stdout
    finally:
        server.close()
    figures = json.loads(out.strip().splitlines()[-1])
    over = (figures["rss_peak"] - figures["rss_before"]) / figures["frame_bytes"]
    stats = _common.summarize([over])
    row = _common.row(f"peak RSS of a {count:,}-row map over the frame's size", "x frame", stats, spread="max")
    return row, (f"memory: frame {figures['frame_bytes'] / 1e6:.1f} MB; RSS {figures['rss_before'] / 1e6:.0f} MB "
                 f"before it, {figures['rss_after_frame'] / 1e6:.0f} MB with it, peak {figures['rss_peak'] / 1e6:.0f} MB "
                 f"during the map: {over:.2f} x the frame")


def main(argv: list[str] | None = None) -> dict:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return {}
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.25, help="the server's seconds per request (default 0.25)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rows-per-slot", type=int, default=20, help="rows per unit of concurrency in a case")
    p.add_argument("--memory-rows", type=int, default=100_000)
    args = p.parse_args(argv)
    quick = args.quick
    os.environ["JUPYTER_DATA_DIR"] = tempfile.mkdtemp(prefix="agy-bench-map-")  # the map's store: a scratch one
    rows = throughput(0.05 if quick else args.latency, 1 if quick else args.rounds, 4 if quick else args.rows_per_slot,
                      args.verbose)
    quota_row, quota_note = quota(10, 1.0, 30 if quick else 100, 8, args.verbose)
    memory_row, memory_note = memory(2_000 if quick else args.memory_rows)
    result = {"benchmark": "map", "environment": _common.environment(),
              "params": {"latency": args.latency, "rounds": args.rounds, "rows_per_slot": args.rows_per_slot,
                         "memory_rows": args.memory_rows, "quick": quick},
              "rows": [*rows, quota_row, memory_row], "notes": [quota_note, memory_note]}
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
