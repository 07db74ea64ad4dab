"""Saving conversations as they happen: a chat turn with persistence on against the same turn with it off,
and the cost of saving one message.

  text_turn_off   `agent.chat(prompt)` answered with a short text by the fake server, AGY_PERSIST=0
                  (baseline of text_turn_on); 2 messages per turn
  text_turn_on    the same turn, each message saved to the store as it ends
  tool_turn_off   a turn with one tool call: prompt, call, tool results, answer (4 messages), AGY_PERSIST=0
                  (baseline of tool_turn_on)
  tool_turn_on    the same, saved
  save_message    `Recorder.save(history)` after one ~1 KB reply was appended to a history of H messages:
                  the fingerprint scan of the history plus one row written and committed (µs)
  save_turn_end   the save that ends a turn: the same row, plus the whole history compared (a compaction
                  may have changed older messages) and the conversation's config and finished turn updated
  save_image      the same as save_message with a 100 KB image prompt (the base64 JSON is ~133 KB)

Each turn case also gets a CPU row: the process's CPU time (every thread: caller, runtime, the in-process
fake server) per turn over a block, steadier than the wall clock when other jobs share the machine; each
save case a CPU row too (the saving thread's own CPU time, without waits for the disk or the scheduler).

Each case has its own agent on one runtime; the switch is flipped before each block, and each block
starts a new conversation (the history cleared, untimed), so a block is one conversation of
turns/blocks turns (20 by default: 40 or 80 messages), as in a notebook. Blocks rotate. The store is a scratch JUPYTER_DATA_DIR; WAL with synchronous=NORMAL,
so a commit writes the WAL without an fsync (the file survives a killed process, not a power cut).

    python benchmarks/bench_persistence.py [--turns 200] [--blocks 10] [--history 1000]
"""
from __future__ import annotations

import os
import tempfile
import time

import _common

import agy_jupyter as agy
from agy_jupyter.agent.history import Message
from agy_jupyter.agent.persistence import Recorder
from agy_jupyter.testing import FakeGemini, Reply
from google.genai import types

BASELINES = {"text_turn_on": "text_turn_off", "tool_turn_on": "tool_turn_off"}
REPLY_TEXT = "The answer is forty-two, as the spreadsheet shows. " * 20  # ~1 KB


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def turn_cases(fake: FakeGemini, runtime: agy.Runtime) -> dict[str, tuple[bool, agy.Agent, callable]]:
    """(persistence on?, the case's agent, one timed turn) per case."""
    agents = {name: agy.Agent(name, runtime=runtime, tools=[add], policies=[agy.allow_all()])
              for name in ("text_turn_off", "text_turn_on", "tool_turn_off", "tool_turn_on")}

    def text_turn(agent: agy.Agent):
        def run() -> None:
            fake.enqueue(Reply.text("forty-two"))
            agent.chat("What is the answer?")
        return run

    def tool_turn(agent: agy.Agent):
        def run() -> None:
            fake.enqueue(Reply.function_call("add", {"a": 40, "b": 2}, id="c"), Reply.text("It is 42."))
            agent.chat("Add 40 and 2.")
        return run

    return {name: (name.endswith("_on"), agent, (tool_turn if name.startswith("tool") else text_turn)(agent))
            for name, agent in agents.items()}


def time_saves(history: int, saves: int, image: bytes | None, turn_end: bool = False
               ) -> tuple[list[float], list[float]]:
    """Seconds (wall, and this thread's CPU) per Recorder.save that writes one new message onto a saved history of `history` messages
    (`turn_end`: the save that ends a turn, which compares the whole history and updates the config)."""
    recorder = Recorder("bench", agy.AgentConfig(name="bench"))
    messages = [Message(role="user" if i % 2 == 0 else "model", kind="prompt" if i % 2 == 0 else "reply",
                        turn=i // 2 + 1, parts=[types.Part(text=f"message {i} " + "x" * 200)]) for i in range(history)]
    recorder.save(messages, finished_turn=history // 2)  # saved and settled, as at the end of a turn
    samples, cpu = [], []
    for i in range(saves):
        parts = [types.Part(text=REPLY_TEXT)]
        if image is not None:
            parts.append(types.Part(inline_data=types.Blob(data=image, mime_type="image/png")))
        messages.append(Message(role="model", kind="reply", turn=history + i, parts=parts))
        start, start_cpu = _common.clock(), time.thread_time()
        recorder.save(messages, finished_turn=history + i if turn_end else None)
        samples.append(_common.clock() - start)
        cpu.append(time.thread_time() - start_cpu)
    recorder.discard()
    return samples, cpu


def run(turns: int, blocks: int, history: int, saves: int, verbose: bool) -> dict:
    per_block = max(1, turns // blocks)
    scratch = tempfile.mkdtemp(prefix="agy-bench-store-")
    os.environ["JUPYTER_DATA_DIR"] = scratch
    with FakeGemini() as fake:
        os.environ.update(fake.env())
        runtime = agy.Runtime(agy.RuntimeConfig())
        try:
            cases = turn_cases(fake, runtime)

            def block(name: str):
                persist, agent, turn = cases[name]

                def run_block() -> tuple[list[float], float]:
                    os.environ["AGY_PERSIST"] = "1" if persist else "0"
                    agent.clear()  # untimed: each block is a new conversation of `per_block` turns
                    cpu = time.process_time()
                    samples = _common.time_calls(turn, per_block)
                    return samples, (time.process_time() - cpu) / per_block  # all threads: ours, runtime, server
                return run_block

            blocked = {name: block(name) for name in cases}
            for run_block in blocked.values():  # warm up: the store opened, the SDK paths compiled
                run_block()
            done = _common.alternate_rounds(blocked, blocks, _common.progress_printer(verbose))
        finally:
            runtime.shutdown()
    os.environ["AGY_PERSIST"] = "1"
    image = b"\x89PNG\r\n\x1a\n" + os.urandom(100_000)
    micros = {}
    for name, (wall, thread_cpu) in {
            "save_message": time_saves(history, saves, None),
            "save_turn_end": time_saves(history, saves, None, turn_end=True),
            "save_image": time_saves(history, max(1, saves // 5), image)}.items():
        micros[name] = [s * 1e6 for s in wall]
        micros[f"{name} CPU"] = [s * 1e6 for s in thread_cpu]
    millis = {name: [s * 1e3 for samples, _ in results for s in samples] for name, results in done.items()}
    cpu = {f"{name} CPU": [c * 1e3 for _, c in results] for name, results in done.items()}
    rows = []
    for figures, unit in ((millis, "ms/turn"), (cpu, "CPU ms/turn")):
        for name, samples in figures.items():
            stats = _common.summarize(samples)
            baseline = BASELINES.get(name.removesuffix(" CPU"))
            if baseline is not None and unit.startswith("CPU"):
                baseline += " CPU"
            ratio = _common.ratio(stats["median"], _common.summarize(figures[baseline])["median"]) if baseline else None
            rows.append(_common.row(name, unit, stats, baseline=baseline, ratio_value=ratio,
                                    spread="p99" if unit == "ms/turn" else "max"))
    rows += [_common.row(name, "CPU µs" if name.endswith("CPU") else "µs", _common.summarize(samples))
             for name, samples in micros.items()]
    median = {name: _common.summarize(s)["median"] for name, s in {**millis, **cpu, **micros}.items()}
    notes = [f"CPU per message saved (median − median): {1e3 * (median['text_turn_on CPU'] - median['text_turn_off CPU']) / 2:.0f} µs "
             f"in a text turn (2 messages), {1e3 * (median['tool_turn_on CPU'] - median['tool_turn_off CPU']) / 4:.0f} µs "
             "in a tool turn (4 messages)",
             f"one save onto a {history}-message history, wall (CPU): {median['save_message']:.0f} "
             f"({median['save_message CPU']:.0f}) µs for a 1 KB reply, {median['save_turn_end']:.0f} "
             f"({median['save_turn_end CPU']:.0f}) µs at a turn's end, {median['save_image']:.0f} "
             f"({median['save_image CPU']:.0f}) µs for a 100 KB image"]
    return {"benchmark": "persistence", "environment": _common.environment(),
            "params": {"turns_per_case": per_block * blocks, "blocks": blocks, "history": history, "saves": saves},
            "rows": rows, "notes": notes}


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=200, help="timed turns per case (default 200)")
    p.add_argument("--blocks", type=int, default=10, help="blocks the turns are split into (default 10)")
    p.add_argument("--history", type=int, default=1000, help="messages already saved in save_message (default 1000)")
    p.add_argument("--saves", type=int, default=500, help="timed saves in save_message (default 500)")
    args = p.parse_args(argv)
    turns, blocks, saves = (40, 4, 100) if args.quick else (args.turns, args.blocks, args.saves)
    started = time.monotonic()
    result = run(turns, blocks, args.history, saves, args.verbose)
    result["params"]["seconds"] = round(time.monotonic() - started, 1)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
