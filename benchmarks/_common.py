"""Shared by every benchmark: timing, statistics, alternating rounds, the environment, tables, results.

Figures are only compared within one run: every benchmark measures its baseline in the same process,
interleaved with the case it judges, and reports the ratio. Absolute numbers on a shared 2-core machine
drift by tens of percent between runs; ratios of interleaved measurements drift much less.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

HERE = Path(__file__).resolve().parent
MODEL = "gemini-2.5-flash"  # any name works against the fake server; this is what users type

clock = time.perf_counter  # the fake server stamps Disconnect.time with the same clock


# -- statistics ----------------------------------------------------------------------------------

def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank: an observed value, no interpolation."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize(values: Iterable[float]) -> dict[str, float]:
    values = list(values)
    return {"n": len(values), "median": statistics.median(values), "p99": percentile(values, 99),
            "min": min(values), "max": max(values)}


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


# -- running cases -------------------------------------------------------------------------------

def rotated(names: list[str], round_index: int) -> list[str]:
    """The case order for one round: rotate it, so slow drift (another process, turbo) hits every case."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def alternate_rounds(cases: Mapping[str, Callable[[], Any]], rounds: int,
                     progress: Callable[[str], None] | None = None) -> dict[str, list[Any]]:
    """Run every case once per round, in a rotating order; return each case's results, round by round."""
    results: dict[str, list[Any]] = {name: [] for name in cases}
    for index in range(rounds):
        for name in rotated(list(cases), index):
            gc.collect()  # start each case from the same heap state, not the previous case's garbage
            results[name].append(cases[name]())
            if progress:
                progress(f"round {index + 1}/{rounds} {name}")
    return results


def time_calls(call: Callable[[], Any], count: int) -> list[float]:
    """Seconds taken by each of `count` calls."""
    samples = []
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


# -- environment, arguments, output --------------------------------------------------------------

def environment() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "machine": platform.platform(), "python": platform.python_version(),
            "google-genai": version("google-genai"), "httpx2": version("httpx2"),
            "agy_jupyter": version("agy_jupyter"), "load_1min_at_start": load}


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke test (< 20 s)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--verbose", "-v", action="store_true", help="print progress to stderr")
    return p


def progress_printer(enabled: bool) -> Callable[[str], None] | None:
    if not enabled:
        return None
    return lambda message: print(f"  .. {message}", file=sys.stderr, flush=True)


def row(case: str, unit: str, stats: Mapping[str, float], *, baseline: str | None = None,
        ratio_value: float | None = None, best_ratio: float | None = None, spread: str = "p99"
        ) -> dict[str, Any]:
    """One result line: a case's median and spread, and its ratio to the named baseline (if any).

    `best_ratio` compares best against best (timeit's rule: interference only ever slows a run down),
    for figures with few repetitions where one disturbed run can move a median.
    """
    return {"case": case, "unit": unit, "median": stats["median"], "spread_kind": spread,
            "spread": stats[spread], "n": stats["n"], "stats": dict(stats), "baseline": baseline,
            "ratio": ratio_value, "best_ratio": best_ratio}


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return ""
    if digits == 0 and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 2)}f}" if abs(value) < 100 else f"{value:,.1f}"


def markdown_table(results: Iterable[Mapping[str, Any]]) -> str:
    def two(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    lines = ["| benchmark | case | median | spread | unit | n | ratio | best-vs-best | vs |",
             "|---|---|---:|---:|---|---:|---:|---:|---|"]
    for result in results:
        for r in result["rows"]:
            lines.append(f"| {result['benchmark']} | {r['case']} | {_fmt(r['median'])} | "
                         f"{r['spread_kind']} {_fmt(r['spread'])} | {r['unit']} | {r['n']} | {two(r['ratio'])} | "
                         f"{two(r.get('best_ratio'))} | {r['baseline'] or ''} |")
    return "\n".join(lines)


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table (and notes), and write the JSON file if asked."""
    print(markdown_table([result]))
    for note in result.get("notes", []):
        print(f"- {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
