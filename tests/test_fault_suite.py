"""The fault suite: 1,000 turns over 50 agents on one key, the fake server failing about 10 % of the requests
(429 with retryDelay, a per-day 429, 500, 503, a reset before any byte, a drop mid-stream, a stall past the
chat timeout, a malformed chunk, a slow first token, a tool that raises, a tool that hangs past its timeout).

Every turn completes or ends in the typed error its last request's fault calls for, none hangs, the history is
valid after every turn, no agent asks again before a 429's retryDelay has passed, and the runtime is alive at
the end. The same load's wall time with and without faults is in benchmarks/bench_faults.py.
"""
from __future__ import annotations

import pytest

from agy_jupyter.testing.fault_load import FAULTS, run_fault_load


@pytest.mark.timeout(600)
def test_a_thousand_turns_with_ten_percent_faults(fake):
    report = run_fault_load(fake, agents=50, turns=20, fault_rate=0.10, seed=7)
    print("\n" + report.summary())
    assert report.turns == 1000 and report.hung_turns == []
    assert report.wrong_outcomes == [], report.wrong_outcomes[:10]
    assert report.invalid_histories == []
    assert report.own_early_retries == [] and report.early_retries == [], (report.own_early_retries[:5],
                                                                           report.early_retries[:5])
    assert report.runtime_alive
    assert set(report.counts) == set(FAULTS)  # every kind was injected at least once
    assert 0.07 < sum(report.counts.values()) / report.requests < 0.13
    assert report.completed > 850  # the retried kinds recovered
