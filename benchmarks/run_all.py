"""Run every benchmark, write benchmarks/results.json and print one markdown table.

Each benchmark runs in its own process, so no thread, loop or server of one disturbs the next.

    python benchmarks/run_all.py            # full sizes (a few minutes on 2 cores)
    python benchmarks/run_all.py --quick    # CI smoke test, well under a minute (results-quick.json)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

BENCHMARKS = ["bench_stream_throughput", "bench_command_roundtrip", "bench_cancel", "bench_notebook",
              "bench_notebook_tools", "bench_tool_dispatch", "bench_faults", "bench_local_model",
              "bench_persistence", "bench_load", "bench_batch", "bench_map", "bench_scale", "bench_frontend"]


def run_one(name: str, extra: list[str], scratch: Path) -> dict:
    out = scratch / f"{name}.json"
    command = [sys.executable, str(_common.HERE / f"{name}.py"), "--json", str(out), *extra]
    print(f"## {name}", flush=True)
    subprocess.run(command, check=True)  # its own table goes to our stdout as it finishes
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes in every benchmark (CI smoke test)")
    p.add_argument("--only", choices=BENCHMARKS, action="append", help="run just this one (repeatable)")
    p.add_argument("--out", help="where to write the JSON (default benchmarks/results.json; with --quick "
                                 "benchmarks/results-quick.json, so a smoke test never replaces the figures)")
    p.add_argument("--verbose", "-v", action="store_true", help="print each benchmark's progress")
    args = p.parse_args(argv)
    out = Path(args.out or _common.HERE / ("results-quick.json" if args.quick else "results.json"))
    extra = (["--quick"] if args.quick else []) + (["--verbose"] if args.verbose else [])
    with tempfile.TemporaryDirectory() as scratch:
        results = [run_one(name, extra, Path(scratch)) for name in args.only or BENCHMARKS]
    summary = {"environment": _common.environment(), "quick": args.quick, "benchmarks": results}
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(f"\n## All results ({summary['environment']['date']}, {summary['environment']['cpus']} CPUs)\n")
    print(_common.markdown_table(results))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
