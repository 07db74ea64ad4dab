"""The embedded local model: tokens per second and first token through the agent, against raw llama-cpp-python.

One prompt, greedy (temperature 0), the same max tokens, the same loaded model: the baseline calls
`Llama.create_chat_completion(stream=True)` on the very `Llama` object the agent's backend holds, so
weights, threads and the prompt cache are shared and only the path differs.

  raw_llama     create_chat_completion(stream=True) iterated in this thread (**baseline**)
  agent_stream  Agent.stream(prompt) iterated in this thread, counting TextDelta
  agent_chat    Agent.chat(prompt)

tokens/s is the reply's tokens (the model's tokenizer) ÷ the wall time of the whole call; first token
is the time to the first text; CPU ms/token is this process's CPU time (all threads, the model's compute
included) per reply token, steadier than the wall clock on a shared machine. The agent's history is cleared (untimed) before each turn.
Cancel: after 5 text events, `Agent.cancel()`; "turn ended" is until it returns, "generation stopped"
until the model's worker thread finished generating (it stamps time.perf_counter()). Goals: tokens/s
≥ 0.9 × raw; cancel ≤ 100 ms.

    python benchmarks/bench_local_model.py [--rounds 5] [--max-tokens 128] [--cancels 10]
"""
from __future__ import annotations

import importlib.util
import os
import time
from typing import Any, Callable

import _common

import agy_jupyter as agy
from agy_jupyter.agent.events import TextDelta

BASELINE = "raw_llama"
PROMPT = "Write a short story about a robot who learns to paint."
CANCEL_PROMPT = "Write a very long story about a dragon and a knight."
WAIT = 60.0


class Setup:
    def __init__(self, max_tokens: int):
        for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
            os.environ.pop(name, None)
        self.max_tokens = max_tokens
        self.runtime = agy.Runtime(agy.RuntimeConfig(chat_timeout=300))
        self.agent = agy.Agent("bench", runtime=self.runtime, model="local", temperature=0.0,
                               max_output_tokens=max_tokens)
        self.agent.chat("Say OK.")  # loads the model on its worker thread
        self.model = self.runtime._session(self.agent.id).backend.model
        self.llama = self.model.load()

    def tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def close(self) -> None:
        self.runtime.shutdown()


def raw_llama(setup: Setup) -> dict[str, float]:
    cpu, start = time.process_time(), _common.clock()
    first = None
    text = []
    for chunk in setup.llama.create_chat_completion(messages=[{"role": "user", "content": PROMPT}], stream=True,
                                                    max_tokens=setup.max_tokens, temperature=0.0):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            first = first if first is not None else _common.clock() - start
            text.append(piece)
    return measured(setup, "".join(text), _common.clock() - start, first, cpu)


def agent_stream(setup: Setup) -> dict[str, float]:
    setup.agent.clear()
    cpu, start = time.process_time(), _common.clock()
    first = None
    stream = setup.agent.stream(PROMPT)
    text = []
    for event in stream:
        if isinstance(event, TextDelta):
            first = first if first is not None else _common.clock() - start
            text.append(event.text)
    finish(stream)
    return measured(setup, "".join(text), _common.clock() - start, first, cpu)


def agent_chat(setup: Setup) -> dict[str, float]:
    setup.agent.clear()
    cpu, start = time.process_time(), _common.clock()
    try:
        text = setup.agent.chat(PROMPT).text
    except agy.MaxTokens as exc:  # the reply hit max tokens: the same tokens were generated
        text = exc.partial_text
    return measured(setup, text, _common.clock() - start, None, cpu)


def finish(stream: Any) -> None:
    try:
        stream.result(WAIT)
    except agy.MaxTokens:
        pass


def measured(setup: Setup, text: str, seconds: float, first: float | None, cpu: float) -> dict[str, float]:
    """The case's figures; CPU time is this process's, all threads (the model's compute included)."""
    cpu_ms = (time.process_time() - cpu) * 1e3
    tokens = setup.tokens(text)
    return {"tokens": tokens, "tokens_per_s": tokens / seconds, "first_ms": (first or 0.0) * 1e3,
            "cpu_ms_per_token": cpu_ms / max(tokens, 1)}


def cancel_once(setup: Setup) -> dict[str, float]:
    setup.agent.clear()
    stream = setup.agent.stream(CANCEL_PROMPT)
    seen = 0
    for event in stream:
        if isinstance(event, TextDelta):
            seen += 1
            if seen == 5:
                break
    start = _common.clock()
    setup.agent.cancel()
    ended = _common.clock() - start
    if not stream.result(WAIT).cancelled:
        raise AssertionError("the turn was not reported as cancelled")
    deadline = time.monotonic() + WAIT
    while setup.model.finished_at < start and time.monotonic() < deadline:
        time.sleep(0.0005)
    return {"ended_ms": ended * 1e3, "stopped_ms": (setup.model.finished_at - start) * 1e3}


def run(rounds: int, max_tokens: int, cancels: int, verbose: bool) -> dict:
    setup = Setup(max_tokens)
    try:
        cases: dict[str, Callable[[], dict[str, float]]] = {
            BASELINE: lambda: raw_llama(setup), "agent_stream": lambda: agent_stream(setup),
            "agent_chat": lambda: agent_chat(setup)}
        for case in cases.values():  # warm up: the prompt cache, first-call imports
            case()
        results = _common.alternate_rounds(cases, rounds, _common.progress_printer(verbose))
        stops = [cancel_once(setup) for _ in range(cancels)]
    finally:
        setup.close()
    rows = rows_for(results)
    for key, label in (("ended_ms", "cancel → turn ended"), ("stopped_ms", "cancel → generation stopped")):
        rows.append(_common.row(label, "ms", _common.summarize(s[key] for s in stops), spread="max"))
    tokens = {name: samples[0]["tokens"] for name, samples in results.items()}
    return {"benchmark": "local_model", "environment": _common.environment(),
            "params": {"rounds": rounds, "max_tokens": max_tokens, "cancels": cancels, "prompt": PROMPT},
            "rows": rows, "goal": "agent tokens/s ≥ 0.9 × raw llama-cpp-python; cancel ≤ 100 ms",
            "notes": [f"reply tokens per case (same greedy reply): {tokens}",
                      "first token (ms, median): " + ", ".join(
                          f"{name} {_common.summarize(s['first_ms'] for s in samples)['median']:.1f}"
                          for name, samples in results.items() if name != "agent_chat")]}


def rows_for(results: dict[str, list[dict[str, float]]]) -> list[dict]:
    rows = []
    for metric, unit in (("tokens_per_s", "tokens/s"), ("first_ms", "ms to first token"),
                         ("cpu_ms_per_token", "CPU ms/token")):
        for name, samples in results.items():
            if metric == "first_ms" and name == "agent_chat":
                continue  # chat returns the whole reply: no first token to see
            values = [s[metric] for s in samples]
            is_base = name == BASELINE
            per_round = [s[metric] / b[metric] for s, b in zip(samples, results[BASELINE]) if b[metric]]
            best = max if metric == "tokens_per_s" else min
            rows.append(_common.row(f"{name} {metric}", unit, _common.summarize(values), spread="min"
                                    if metric == "tokens_per_s" else "max", baseline=None if is_base else BASELINE,
                                    ratio_value=None if is_base else _common.summarize(per_round)["median"],
                                    best_ratio=None if is_base else _common.ratio(
                                        best(values), best(s[metric] for s in results[BASELINE]))))
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds of the three cases (default 5)")
    p.add_argument("--max-tokens", type=int, default=128, help="reply length cap (default 128)")
    p.add_argument("--cancels", type=int, default=10, help="cancel measurements (default 10)")
    args = p.parse_args(argv)
    quick = args.quick
    if importlib.util.find_spec("llama_cpp") is None:  # run_all.py goes on without it
        result = {"benchmark": "local_model", "environment": _common.environment(), "rows": [],
                  "notes": ["skipped: llama-cpp-python is not installed (pip install '.[local]')"]}
        _common.report(result, args)
        return result
    result = run(2 if quick else args.rounds, 48 if quick else args.max_tokens, 3 if quick else args.cancels,
                 args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
