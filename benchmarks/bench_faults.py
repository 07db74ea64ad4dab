"""The fault suite's load, timed: 50 agents x 20 turns on one key, with about 10 % faults and without.

The load is agy_jupyter.testing.fault_load (the same one tests/test_fault_suite.py checks): a fake server
that answers each request with a seeded fault or normally (429 with retryDelay, a per-day 429, 500, 503, a
reset before any byte, a drop mid-stream, a stall past the chat timeout, a malformed chunk, a slow first
token, a tool that raises or hangs past its timeout). Reported: wall time of the faulted run against the
same load with no faults, in the same process, runs alternating; and the counts per fault kind and per
outcome of the last faulted run.

    python benchmarks/bench_faults.py [--rounds 2] [--agents 50] [--turns 20]
"""
from __future__ import annotations

import os

import _common

from agy_jupyter.testing import FakeGemini
from agy_jupyter.testing.fault_load import run_fault_load

BASELINE = "no_faults"


def run(rounds: int, agents: int, turns: int, verbose: bool) -> dict:
    reports = {}
    with FakeGemini() as fake:
        os.environ.update(fake.env())
        cases = {"no_faults": lambda: run_fault_load(fake, agents=agents, turns=turns, fault_rate=0.0),
                 "faults_10pc": lambda: run_fault_load(fake, agents=agents, turns=turns, fault_rate=0.10)}

        def timed(name: str):
            def case() -> float:
                reports[name] = cases[name]()
                return reports[name].wall_seconds
            return case

        walls = {name: [] for name in cases}
        for index in range(rounds):
            for name in _common.rotated(list(cases), index):
                walls[name].append(timed(name)())
                if verbose:
                    print(f"  .. {name}: {reports[name].summary()}", flush=True)
    base = _common.summarize(walls[BASELINE])["median"]
    rows = []
    for name, values in walls.items():
        stats = _common.summarize(values)
        rows.append(_common.row(f"{name} ({agents} agents x {turns} turns)", "s wall", stats, spread="max",
                                baseline=None if name == BASELINE else BASELINE,
                                ratio_value=None if name == BASELINE else stats["median"] / base,
                                best_ratio=None if name == BASELINE else min(values) / min(walls[BASELINE])))
    faulted = reports["faults_10pc"]
    checks = ("wrong outcomes", len(faulted.wrong_outcomes)), ("invalid histories", len(faulted.invalid_histories)), \
        ("calls inside a retryDelay", len(faulted.early_retries) + len(faulted.own_early_retries)), \
        ("hung turns", len(faulted.hung_turns))
    return {"benchmark": "faults", "environment": _common.environment(),
            "params": {"rounds": rounds, "agents": agents, "turns": turns},
            "rows": rows, "notes": [f"last faulted run: {faulted.summary()}",
                                    "checks: " + ", ".join(f"{what} {n}" for what, n in checks)]}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2, help="runs of each case (default 2)")
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--turns", type=int, default=20)
    args = p.parse_args(argv)
    quick = args.quick
    result = run(1 if quick else args.rounds, 10 if quick else args.agents, 5 if quick else args.turns, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
