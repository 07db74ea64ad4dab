"""Notebook tools: the run_python round trip, and inspect_variable on a 1,000,000 x 20 frame.

run_python, in-process with an IPython shell (the user namespace) and two threads as in a kernel: the
main thread runs an asyncio loop (the kernel's), the runtime thread runs the agent's loop.
  exec_direct        `exec` of the compiled code in the namespace, on the main thread (the baseline)
  run_python_attached  the tool awaited on the runtime loop, the main loop awaiting (an attached cell):
                     tool call -> MainThread.call -> code on the main thread -> result back to the loop
  run_python_blocking  the same while the main thread serves BlockingJobs (display_chat_blocking)
Overhead = median(case) - median(exec_direct); target < 5 ms.

inspect_variable: `inspect_variable("df")` against a plain `df.describe()` of the same frame, rounds
alternating.

    python benchmarks/bench_notebook_tools.py [--calls 500] [--rounds 5]
"""
from __future__ import annotations

import asyncio
import statistics
import threading

import _common

CODE = "x = sum(range(10))"  # no last expression: a plain shell would print its display
BASELINE = "exec_direct"


class RuntimeLoop:
    """The agent's loop in its own thread, where the tool runs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="runtime-loop", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def tool_calls(count: int) -> list[float]:
    """On the runtime loop: seconds per `await run_python(CODE)`."""
    from agy_jupyter.notebook.run_python import run_python
    samples = []
    for _ in range(count):
        start = _common.clock()
        result = await run_python(CODE)
        samples.append(_common.clock() - start)
        assert result.value == {"result": None}, result.value
    return samples


def run_python_cases(shell, runtime: RuntimeLoop, main: asyncio.Runner, per_block: int) -> dict:
    from agy_jupyter.notebook.main_thread import MainThread
    from agy_jupyter.notebook.run_python import BlockingJobs, jobs_run_by
    code = compile(CODE, "<bench>", "exec")

    def exec_direct() -> list[float]:
        return _common.time_calls(lambda: exec(code, shell.user_ns), per_block)

    async def attached_cell() -> list[float]:
        with jobs_run_by(MainThread()):  # the cell's loop, as display_chat sets it
            future = asyncio.run_coroutine_threadsafe(tool_calls(per_block), runtime.loop)
        return await asyncio.wrap_future(future)

    def blocking_cell() -> list[float]:
        jobs = BlockingJobs()
        with jobs_run_by(jobs):
            future = asyncio.run_coroutine_threadsafe(tool_calls(per_block), runtime.loop)
        jobs.serve_until(future.done)
        return future.result()

    return {BASELINE: exec_direct, "run_python_attached": lambda: main.run(attached_cell()),
            "run_python_blocking": blocking_cell}


def inspect_cases(shell, rows: int) -> dict:
    import numpy as np
    import pandas as pd
    from agy_jupyter.notebook.notebook_tools import inspect_variable
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((rows, 20)), columns=[f"c{i}" for i in range(20)])
    frame["c3"] = frame["c3"].where(frame["c3"] > -2)  # some nulls
    shell.user_ns["df"] = frame

    def timed(call) -> float:
        start = _common.clock()
        call()
        return _common.clock() - start

    return {"describe": lambda: timed(frame.describe), "inspect_variable": lambda: timed(lambda: inspect_variable("df"))}


def run(calls: int, blocks: int, rounds: int, rows: int, verbose: bool) -> dict:
    from IPython.core.interactiveshell import InteractiveShell
    from agy_jupyter.notebook.notebook_tools import inspect_variable
    from traitlets.config import Config
    shell = InteractiveShell.instance(config=Config({"HistoryManager": {"hist_file": ":memory:"}}))
    progress = _common.progress_printer(verbose)
    runtime, main = RuntimeLoop(), asyncio.Runner()
    per_block = max(1, calls // blocks)
    try:
        cases = run_python_cases(shell, runtime, main, per_block)
        for case in cases.values():
            case()  # warm up
        blocks_done = _common.alternate_rounds(cases, blocks, progress)
    finally:
        main.close()
        runtime.close()
    micros = {name: [s * 1e6 for block in results for s in block] for name, results in blocks_done.items()}
    stats = {name: _common.summarize(samples) for name, samples in micros.items()}
    rows_out = [_common.row(name, "µs", stats[name], baseline=None if name == BASELINE else BASELINE,
                            ratio_value=None if name == BASELINE else
                            _common.ratio(stats[name]["median"], stats[BASELINE]["median"]))
                for name in micros]
    def overhead(case: str, key: str) -> str:
        return f"{(stats[case][key] - stats[BASELINE]['median']) / 1e3:.3f} ms"  # exec's median either way

    notes = [f"run_python overhead over exec, median (p99): attached {overhead('run_python_attached', 'median')} "
             f"({overhead('run_python_attached', 'p99')}), blocking {overhead('run_python_blocking', 'median')} "
             f"({overhead('run_python_blocking', 'p99')}); target < 5 ms"]

    inspect = _common.alternate_rounds(inspect_cases(shell, rows), rounds, progress)
    istats = {name: _common.summarize(s) for name, s in inspect.items()}
    rows_out += [_common.row(f"{name} {rows:,}x20", "s", istats[name], spread="max",
                             baseline=None if name == "describe" else "describe",
                             ratio_value=None if name == "describe" else
                             statistics.median(a / b for a, b in zip(inspect[name], inspect["describe"])),
                             best_ratio=None if name == "describe" else
                             min(inspect[name]) / min(inspect["describe"]))
                 for name in inspect]
    notes.append(f"inspect_variable answer: {len(inspect_variable('df')):,} characters (cap 8,000)")
    return {"benchmark": "notebook_tools", "environment": _common.environment(),
            "params": {"calls_per_case": per_block * blocks, "blocks": blocks, "rounds": rounds, "rows": rows},
            "rows": rows_out, "notes": notes}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=500, help="timed run_python calls per case (default 500)")
    p.add_argument("--blocks", type=int, default=10, help="blocks the calls are split into (default 10)")
    p.add_argument("--rounds", type=int, default=5, help="inspect_variable / describe rounds (default 5)")
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the inspected frame (default 1,000,000)")
    args = p.parse_args(argv)
    calls, blocks, rounds, rows = (100, 5, 2, 100_000) if args.quick else (args.calls, args.blocks, args.rounds,
                                                                           args.rows)
    result = run(calls, blocks, rounds, rows, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
