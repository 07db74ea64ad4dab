"""A load with injected faults: many agents, many turns, and a fake server that fails a share of the requests.

>>> with FakeGemini() as fake:
...     report = run_fault_load(fake, agents=50, turns=20, fault_rate=0.10, seed=1)
>>> report.wrong_outcomes, report.counts

Each model request draws a fault (seeded, so a run repeats) from FAULTS, or none. A turn's outcome is then
fixed by the fault of its last request: the retried kinds (429 with retryDelay, 500, 503, a reset before any
byte) end a turn only when its retries ran out; the others end it with the typed error in EXPECTED, and a
turn whose last request was fine completes. The tool faults sit on a function call: the tool raises, or
hangs past its timeout, and the model is told; the turn completes. `run_fault_load` runs the agents at once
on one runtime and checks each turn against that rule, the history after every turn, the retry spacing
after every 429, and the runtime at the end. Used by tests/test_fault_suite.py and benchmarks/bench_faults.py.

The spacing check needs the client's view: when a 429 was read (the quota state notes it) and when each
model call started, after its quota check (`GeminiBackend.stream` is wrapped to note the time; the real
call runs). Server arrival times alone cannot tell: 50 agents serialising requests on one loop put calls
that passed their check before the 429 was read at the server up to a second later (measured here).
"""
from __future__ import annotations

import asyncio
import collections
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from ..agent.api import Agent
from ..agent.backend import GeminiBackend
from ..agent.history import contents_for_model, history_is_valid
from ..agent.policies import allow
from ..runtime.core import Runtime, RuntimeConfig
from ..runtime.errors import AgyError, BackendError, QuotaExhausted, Timeout
from ..runtime.quota import QuotaRegistry, QuotaState
from .fake_gemini import FakeGemini, RecordedRequest
from .replies import Chunk, Reply

PER_MINUTE = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
PER_DAY = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
RETRY_DELAY = 1.0  # the retryDelay of an injected 429
SLOW_TTFT = 0.3
CHAT_TIMEOUT = 20.0  # a stall outlasts it
TOOL_TIMEOUT = 0.2
TOOL_HANG = 1.0  # a hung tool's thread is busy this long after its timeout
TOOL_CALL_RATE = 0.2  # share of first requests answered with a function call (without a fault)

FAULTS = ("rate_limit", "quota_per_day", "server_500", "server_503", "reset", "drop_mid_stream", "stall",
          "malformed", "slow_ttft", "tool_raises", "tool_hangs")
RETRIED = {"rate_limit": QuotaExhausted, "server_500": BackendError, "server_503": BackendError,
           "reset": BackendError}  # the error when the retries run out
EXPECTED = {"quota_per_day": QuotaExhausted, "drop_mid_stream": BackendError, "stall": Timeout,
            "malformed": BackendError, **RETRIED}
_PROMPT = re.compile(r"^a(\d+) t(\d+)$")


@dataclass
class FaultReport:
    turns: int = 0
    completed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)  # typed error name -> turns
    counts: collections.Counter = field(default_factory=collections.Counter)  # fault kind -> requests
    requests: int = 0
    wrong_outcomes: list[str] = field(default_factory=list)
    invalid_histories: list[str] = field(default_factory=list)
    early_retries: list[str] = field(default_factory=list)  # a model call started inside a 429's retryDelay
    own_early_retries: list[str] = field(default_factory=list)  # the 429'd agent itself came back too soon
    hung_turns: list[str] = field(default_factory=list)
    runtime_alive: bool = False
    wall_seconds: float = 0.0

    def summary(self) -> str:
        faults = ", ".join(f"{kind} {self.counts[kind]}" for kind in FAULTS if self.counts[kind])
        errors = ", ".join(f"{name} {n}" for name, n in sorted(self.errors.items()))
        return (f"{self.turns} turns ({self.completed} completed; errors: {errors or 'none'}), {self.requests} "
                f"requests, faults: {faults or 'none'}; {self.wall_seconds:.1f} s")


class FaultPlan:
    """The fake server's reply for each request: a fault drawn with `rate`, or a normal answer."""

    def __init__(self, rate: float, seed: int):
        self.rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.fault_of: dict[int, str | None] = {}  # request index -> fault kind

    def __call__(self, rec: RecordedRequest) -> Reply:
        first = _is_first_request(rec)
        with self._lock:
            draw = self._random.random()
            kinds = FAULTS if first else FAULTS[:-2]  # tool faults only where a tool call can be made
            fault = self._random.choice(kinds) if draw < self.rate else None
            tool_call = first and fault is None and self._random.random() < TOOL_CALL_RATE
        self.fault_of[rec.index] = fault
        return _reply(fault, tool_call)


def _is_first_request(rec: RecordedRequest) -> bool:
    """The turn's first model request: its last content is the user's prompt, not a tool result."""
    last = rec.contents[-1] if rec.contents else {}
    return any("text" in part for part in last.get("parts", []))


def _reply(fault: str | None, tool_call: bool) -> Reply:
    text = Reply(chunks=[Chunk.text("All "), Chunk.text("fine.")])
    if fault is None:
        return Reply.function_call("work", {"mode": "ok"}) if tool_call else text
    return {
        "rate_limit": lambda: Reply.error(429, retry_delay=RETRY_DELAY, quota_id=PER_MINUTE, quota_value=15),
        "quota_per_day": lambda: Reply.error(429, retry_delay=RETRY_DELAY, quota_id=PER_DAY, quota_value=250),
        "server_500": lambda: Reply.error(500),
        "server_503": lambda: Reply.error(503),
        "reset": Reply.connection_reset,
        "drop_mid_stream": lambda: text.drop_after(1),
        "stall": lambda: text.stall_after(1),
        "malformed": lambda: text.malformed_after(1),
        "slow_ttft": lambda: text.with_(ttft=SLOW_TTFT),
        "tool_raises": lambda: Reply.function_call("work", {"mode": "raise"}),
        "tool_hangs": lambda: Reply.function_call("work", {"mode": "hang"}),
    }[fault]()


class _HitTimes(QuotaState):
    """A key's quota state that also notes when the client read each 429 and until when calls must wait."""

    def __init__(self, key_id: str):
        super().__init__(key_id)
        self.hits: list[tuple[float, float]] = []  # (read at, resume at), time.monotonic()

    def record_quota_hit(self, retry_after: float | None) -> float:
        delay = super().record_quota_hit(retry_after)
        now = time.monotonic()
        self.hits.append((now, now + delay))
        return delay


def work(mode: str) -> str:
    """Do some work. mode: ok, raise or hang."""
    if mode == "raise":
        raise RuntimeError("the tool failed")
    if mode == "hang":
        time.sleep(TOOL_HANG)
    return "worked"


def run_fault_load(fake: FakeGemini, *, agents: int = 50, turns: int = 20, fault_rate: float = 0.10,
                   seed: int = 1, model: str = "gemini-2.5-flash") -> FaultReport:
    """Run `agents` x `turns` turns at once against `fake` with faults; check every turn. See the module doc."""
    plan = FaultPlan(fault_rate, seed)
    fake.reset()
    fake.default = plan
    quota = QuotaRegistry(state=_HitTimes)
    starts: list[float] = []  # when each model call started (after its quota check), time.monotonic()
    stream = GeminiBackend.stream

    async def timed_stream(self: GeminiBackend, *args: Any, **kwargs: Any) -> Any:
        starts.append(time.monotonic())
        return await stream(self, *args, **kwargs)

    runtime = Runtime(RuntimeConfig(chat_timeout=CHAT_TIMEOUT, tool_threads=16), quota=quota)
    report = FaultReport()
    outcomes: dict[tuple[int, int], str] = {}
    started = time.perf_counter()
    try:
        crew = [Agent(f"load{i}", runtime=runtime, model=model, tools=[work], policies=[allow("work")],
                      tool_timeout=TOOL_TIMEOUT, system_instruction=f"agent {i}") for i in range(agents)]
        with mock.patch.object(GeminiBackend, "stream", timed_stream):  # instrumentation: the real call runs
            asyncio.run(_drive(crew, turns, outcomes, report))
        report.wall_seconds = time.perf_counter() - started
        report.runtime_alive = runtime.is_alive
    finally:
        runtime.shutdown()
        fake.default = Reply.echo()
    hits = [hit for state in quota.states() for hit in state.hits]
    _check(fake.requests, plan, outcomes, hits, starts, report)
    return report


async def _drive(crew: list[Agent], turns: int, outcomes: dict, report: FaultReport) -> None:
    async def one_agent(index: int, agent: Agent) -> None:
        for turn in range(turns):
            try:
                async with asyncio.timeout(CHAT_TIMEOUT * 4):  # far past any legitimate turn: a hang
                    await agent.achat(f"a{index} t{turn}")
                outcomes[index, turn] = "ok"
            except TimeoutError:
                report.hung_turns.append(f"agent {index} turn {turn}")
                outcomes[index, turn] = "hung"
            except AgyError as error:
                outcomes[index, turn] = type(error).__name__
            history = await agent.aio.history()
            if not history_is_valid(contents_for_model(history)):
                report.invalid_histories.append(f"agent {index} after turn {turn}")

    await asyncio.gather(*(one_agent(i, agent) for i, agent in enumerate(crew)))


def _turn_of(rec: RecordedRequest) -> tuple[int, int] | None:
    for content in reversed(rec.contents):
        for part in content.get("parts", []):
            match = _PROMPT.match(str(part.get("text", "")))
            if match:
                return int(match[1]), int(match[2])
    return None


def _check(requests: list[RecordedRequest], plan: FaultPlan, outcomes: dict, hits: list[tuple[float, float]],
           starts: list[float], report: FaultReport) -> None:
    by_turn: dict[tuple[int, int], list[RecordedRequest]] = collections.defaultdict(list)
    for rec in requests:
        key = _turn_of(rec)
        if key is not None:
            by_turn[key].append(rec)
    report.requests = len(requests)
    report.counts.update(kind for kind in plan.fault_of.values() if kind)
    report.turns = len(outcomes)
    report.completed = sum(1 for o in outcomes.values() if o == "ok")
    report.errors.update(o for o in outcomes.values() if o not in ("ok", "hung"))
    for key, outcome in sorted(outcomes.items()):
        recs = by_turn.get(key, [])
        last = plan.fault_of.get(recs[-1].index) if recs else None
        expected = EXPECTED[last].__name__ if last in EXPECTED else "ok"
        if outcome != expected:
            faults = [plan.fault_of.get(r.index) for r in recs]
            report.wrong_outcomes.append(f"agent {key[0]} turn {key[1]}: {outcome}, expected {expected} "
                                         f"(faults of its requests: {faults})")
    # retry spacing. The agent that got a 429 asks again only after its retryDelay (server times); and from
    # the moment the client read a 429 until its retryDelay has passed, no agent on the key starts a call
    # (client times: requests already past their check may still reach the server in that window).
    for hit in (r for r in requests if plan.fault_of.get(r.index) == "rate_limit"):
        owner = _turn_of(hit)
        for rec in requests:
            key = _turn_of(rec)
            if hit.time < rec.time < hit.time + RETRY_DELAY and owner and key and key[0] == owner[0]:
                report.own_early_retries.append(f"agent {key[0]}: {rec.time - hit.time:.3f} s after its 429")
    for read_at, resume_at in hits:
        report.early_retries += [f"a call started {start - read_at:.3f} s after a 429 was read, "
                                 f"{resume_at - start:.3f} s before calls could resume"
                                 for start in starts if read_at < start < resume_at]
