"""Side by side with peers: agy_jupyter's `%%chat` next to chatlab and jupyter-ai-magics' `%%ai`, one run.

Every tool gets the same scripted reply from the same fake server (agy_jupyter.testing.FakeGemini): agy
through google-genai on the Gemini route, the peers through the `openai` client on its OpenAI-compatible
route (POST /v1/chat/completions, OPENAI_BASE_URL in the kernel's environment). One ipykernel per tool
(agy_jupyter.testing.kernel.Kernel, over ZMQ as a browser front end), cases in rotating order.

  bytes      iopub wire bytes and messages of one cell (messages whose parent is that cell), for 16 KB in
             400 chunks and 64 KB in 1,600 chunks, 1 ms apart; the text the front end ends up showing is
             checked to be the whole reply
  cpu        the kernel process's CPU time for that cell (time.process_time() in the kernel before and after:
             every thread of the kernel, agy's runtime thread included)
  first      the first iopub message of the cell that carries reply text − the server's first chunk
             (ttft 0.3 s, then 3 more chunks 100 ms apart, 1,000 characters)
  interrupt  kernel interrupt (SIGINT) while the server pauses 12 s after the first chunk → the server sees the
             client disconnect ("never" if not within 10 s); also → the cell's execute_reply (a tool that
             ignores the interrupt ends only when the rest of the reply comes, after the pause)
  click      an ipywidgets Button "click" comm message sent 0.3 s into a cell streaming for ~1 s: was the
             handler run before the cell ended, and how long after the click. For agy also its own widget:
             the reply's Stop button → the server sees the disconnect

    benchmarks/peers/setup_venv.sh
    benchmarks/peers/.venv/bin/python benchmarks/peers/bench_peers.py [--rounds 2] [--reps 5] [--json PATH]
"""
from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common and bench_notebook

import _common  # noqa: E402
from bench_notebook import make_text, wait_until  # noqa: E402

from agy_jupyter.testing import Chunk, FakeGemini, Reply  # noqa: E402
from agy_jupyter.testing.kernel import Execution, FrontEnd, Kernel  # noqa: E402

BASELINE = "agy"
OPENAI_MODEL = "gpt-fake"  # any name: the fake server answers every model
SIZES = ((16 * 1024, 400), (64 * 1024, 1600))
CHUNK_DELAY = 0.001
TTFT, FIRST_CHUNKS, FIRST_DELAY = 0.3, 4, 0.1
CLICK_AFTER = 0.3             # seconds into the streaming cell
CLICK_REPLY = dict(chunks=20, delay=0.05)  # ~1 s of streaming
DISCONNECT_WAIT = 10.0
SILENCE = DISCONNECT_WAIT + 2  # the interrupt case's pause after its first chunk
WAIT = 120.0
PROMPT = "Write a long answer please"

SETUP = '''
import time, ipywidgets
_clicks = []
_button = ipywidgets.Button(description="Click me")
_button.on_click(lambda _b: _clicks.append(time.monotonic()))
_cell_ends = {}  # each cell's source -> when it last returned, on the same clock as the clicks
get_ipython().events.register("post_run_cell",
                              lambda result: _cell_ends.__setitem__(result.info.raw_cell, time.monotonic()))
'''


class Tool:
    """One tool in its own kernel: how to set it up, run a prompt, and read what the front end shows."""

    name = ""
    streams = True

    def __init__(self, fake: FakeGemini):
        self.fake = fake
        env = {**fake.env(), "OPENAI_API_KEY": "sk-fake", "OPENAI_BASE_URL": fake.openai_url,
               "AGY_CHAT_TIMEOUT_SECS": "120"}
        self.kernel = Kernel(env=env)
        self.frontend = FrontEnd(self.kernel)  # renders agy's views; the peers open none
        self.kernel.run(SETUP)
        self.button = self.kernel.run("print(_button.model_id)").text().strip()
        self.prepare()

    def prepare(self) -> None: ...

    def before(self) -> None:
        """Forget the previous turn, so every request is the same."""

    def cell(self, prompt: str) -> str:
        raise NotImplementedError

    def shown(self, execution: Execution) -> str:
        """The reply text as the front end ends up showing it (Markdown displays: the latest update)."""
        shown = ""
        for output in execution.cell_outputs():
            shown += output.get("data", {}).get("text/markdown", "")
        return shown

    def execute(self, prompt: str, wait: bool = True) -> Execution:
        self.before()
        execution = self.kernel.execute(self.cell(prompt), timeout=WAIT, wait=wait)
        if wait and execution.reply["content"]["status"] != "ok":
            raise AssertionError(f"{self.name}: the cell failed: {execution.errors()}")
        return execution

    def value(self, expression: str) -> Any:
        return json.loads(self.kernel.run(f"import json as _json; print(_json.dumps({expression}))").text())

    def close(self) -> None:
        self.kernel.shutdown()


class Agy(Tool):
    name = "agy"

    def prepare(self) -> None:
        self.kernel.run("%load_ext agy_jupyter\n%agent create writer --policy allow")

    def before(self) -> None:
        self.kernel.run("%agent clear writer")

    def cell(self, prompt: str) -> str:
        return f"%%chat writer\n{prompt}"

    def shown(self, execution: Execution) -> str:
        return execution.view_text()


class Chatlab(Tool):
    name = "chatlab"

    def prepare(self) -> None:
        self.kernel.run("from chatlab import Chat")

    def cell(self, prompt: str) -> str:  # a fresh Chat: no history, the same request every time
        return f"await Chat(model={OPENAI_MODEL!r})({prompt!r})"


class JupyterAI(Tool):
    name = "jupyter-ai"
    streams = False  # `%%ai` calls provider.generate() and displays the whole answer once

    def prepare(self) -> None:
        self.kernel.run("%load_ext jupyter_ai_magics")

    def before(self) -> None:
        self.kernel.run("%ai reset")

    def cell(self, prompt: str) -> str:
        return f"%%ai openai-chat:{OPENAI_MODEL}\n{prompt}"


TOOLS: list[type[Tool]] = [Agy, Chatlab, JupyterAI]


# -- the cases ---------------------------------------------------------------------------------------

def traffic(tool: Tool, execution: Execution) -> tuple[int, int]:
    sizes = [size for _, size, m in list(tool.kernel.iopub_log)
             if m.get("parent_header", {}).get("msg_id") == execution.msg_id]
    return sum(sizes), len(sizes)


def forget(tool: Tool, execution: Execution) -> None:
    """Drop the payloads of this cell's messages (chatlab's 64 KB cell sends ~200 MB of them)."""
    execution.messages.clear()
    log = tool.kernel.iopub_log
    for index in range(len(log)):
        arrived, size, msg = log[index]
        if msg.get("parent_header", {}).get("msg_id") == execution.msg_id and msg.get("content"):
            log[index] = (arrived, size, {"msg_type": msg["msg_type"], "parent_header": msg["parent_header"],
                                          "content": {}})


def bytes_case(tool: Tool, text: str, chunks: int) -> dict[str, float]:
    tool.kernel.run("import time as _t; _cpu0 = _t.process_time()")
    tool.fake.enqueue(Reply.text(text, chunks=chunks, delay=CHUNK_DELAY))
    started = _common.clock()
    execution = tool.execute(PROMPT)
    seconds = _common.clock() - started
    cpu = float(tool.kernel.run("print(_t.process_time() - _cpu0)").text())
    size, count = traffic(tool, execution)
    shown = tool.shown(execution)
    if text not in shown:
        raise AssertionError(f"{tool.name}: the front end would show {len(shown)} characters, not the reply")
    forget(tool, execution)
    return {"bytes": size, "messages": count, "cpu": cpu, "seconds": seconds,
            "streamed_request": tool.fake.requests[-1].stream}


def first_case(tool: Tool, text: str) -> float:
    tool.fake.reset()
    tool.fake.enqueue(Reply.text(text, chunks=FIRST_CHUNKS, delay=FIRST_DELAY, ttft=TTFT))
    marker = text[:20]  # in the first chunk
    start = len(tool.kernel.iopub_log)
    execution = tool.execute(PROMPT)
    first_chunk = tool.fake.requests[-1].time + TTFT
    arrival = next((t for t, _, m in tool.kernel.iopub_log[start:]
                    if m.get("parent_header", {}).get("msg_id") == execution.msg_id
                    and marker in json.dumps(m.get("content"))), None)
    forget(tool, execution)
    if arrival is None:
        raise AssertionError(f"{tool.name}: no iopub message carried the reply text")
    return arrival - first_chunk


def interrupt_case(tool: Tool) -> dict[str, float | None]:
    tool.fake.reset()
    # Not a stall without end: a tool that ignores the interrupt gets the rest after SILENCE s, and goes on.
    tool.fake.enqueue(Reply(chunks=[Chunk.text("Once upon"), Chunk.text(" a time")], delay=SILENCE))
    execution = tool.execute("Tell me a story", wait=False)
    if not tool.fake.wait_for_requests(1, WAIT):
        raise AssertionError(f"{tool.name}: no request reached the server")
    if tool.streams:
        wait_until(lambda: "Once upon" in tool.shown(execution), timeout=WAIT)
    time.sleep(0.2)
    replied: list[float] = []
    watcher = threading.Thread(target=lambda: execution.done.wait(WAIT) and replied.append(_common.clock()),
                               daemon=True)
    watcher.start()
    interrupted = _common.clock()
    tool.kernel.interrupt()
    gone = tool.fake.wait_for_disconnect(DISCONNECT_WAIT)
    watcher.join(WAIT)
    tool.kernel.wait(execution, WAIT)
    shown = tool.shown(execution)
    forget(tool, execution)
    return {"disconnect": None if gone is None else gone.time - interrupted,
            "reply": replied[0] - interrupted if replied else None,
            "status": execution.reply["content"]["status"], "whole_reply_shown": "Once upon a time" in shown}


def click_case(tool: Tool) -> dict[str, Any]:
    tool.fake.reset()
    tool.fake.enqueue(Reply.text(make_text(2000), **CLICK_REPLY))
    before = tool.value("len(_clicks)")
    execution = tool.execute(PROMPT, wait=False)
    if not tool.fake.wait_for_requests(1, WAIT):
        raise AssertionError(f"{tool.name}: no request reached the server")
    time.sleep(CLICK_AFTER)
    if execution.done.is_set():
        raise AssertionError(f"{tool.name}: the cell ended before the click")
    clicked = time.monotonic()
    tool.kernel.send_comm(tool.button, {"event": "click"})
    tool.kernel.wait(execution, WAIT)
    handled = wait_until(lambda: tool.value("_clicks[-1] if len(_clicks) > %d else 0" % before), timeout=WAIT)
    ended = tool.value(f"_cell_ends[{tool.cell(PROMPT)!r}]")
    forget(tool, execution)
    return {"latency": handled - clicked, "during_cell": handled < ended, "after_cell_end": handled - ended}


def stop_case(tool: Agy) -> float:
    """agy's own widget: the reply's Stop button → the server sees the disconnect."""
    tool.fake.reset()
    tool.fake.enqueue(Reply(chunks=[Chunk.text("Once "), Chunk.text("upon"), Chunk.text(" a time")]).stall_after(2))
    execution = tool.execute("Tell me a story", wait=False)
    wait_until(lambda: "Once upon" in tool.shown(execution), timeout=WAIT)
    time.sleep(0.2)
    stopped = _common.clock()
    tool.kernel.send_comm(execution.stream_view(), {"type": "stop"})
    gone = tool.fake.wait_for_disconnect(DISCONNECT_WAIT)
    tool.kernel.wait(execution, WAIT)
    forget(tool, execution)
    if gone is None:
        raise AssertionError("agy: the Stop button did not close the stream")
    return gone.time - stopped


# -- running and reporting ---------------------------------------------------------------------------

def each(tools: dict[str, Tool], case: Callable[[Tool], Any], rounds: int,
         progress: Callable[[str], None] | None) -> dict[str, list[Any]]:
    return _common.alternate_rounds({name: (lambda tool=tool: case(tool)) for name, tool in tools.items()},
                                    rounds, progress)


def run(sizes: list[tuple[int, int]], rounds: int, reps: int, verbose: bool) -> dict:
    progress = _common.progress_printer(verbose)
    data: dict[str, Any] = {}
    with FakeGemini() as fake:
        tools: dict[str, Tool] = {}
        try:
            for cls in TOOLS:
                tools[cls.name] = cls(fake)
            for tool in tools.values():  # warm up: imports, connections, the front-end library
                fake.enqueue(Reply.text("warm up"))
                tool.execute("warm up")
            for size, chunks in sizes:
                text = make_text(size)
                data[f"bytes_{size}"] = {"text_bytes": len(text), "chunks": chunks,
                                         **each(tools, lambda t: bytes_case(t, text, chunks), rounds, progress)}
            short = make_text(1000)
            data["first"] = each(tools, lambda t: first_case(t, short), reps, progress)
            data["interrupt"] = each(tools, interrupt_case, reps, progress)
            data["click"] = each(tools, click_case, reps, progress)
            data["stop"] = [stop_case(tools["agy"]) for _ in range(reps)]
        finally:
            for tool in tools.values():
                tool.close()
    return {"benchmark": "peers", "environment": {**_common.environment(), **versions()},
            "params": {"sizes": sizes, "rounds": rounds, "reps": reps, "chunk_delay_s": CHUNK_DELAY,
                       "ttft_s": TTFT}, "samples": data}


def versions() -> dict[str, str]:
    names = ("agy_jupyter", "chatlab", "jupyter-ai-magics", "langchain-openai", "openai", "google-genai",
             "ipykernel", "ipywidgets")
    return {name: metadata.version(name) for name in names}


def med(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if len(present) == len(values) and present else None


def fmt_ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    share = value / base
    return f" ({share:.2f}×)" if share < 0.1 else f" ({share:.1f}×)"


def table(result: dict) -> str:
    """The README's table: one column per tool, medians, ratios against agy in brackets."""
    data, names = result["samples"], [cls.name for cls in TOOLS]
    lines = ["| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    first_block = next(block for key, block in data.items() if key.startswith("bytes_"))
    lines.append("| request to the server | " + " | ".join(
        "streamed" if all(s["streamed_request"] for s in first_block[n]) else "not streamed" for n in names) + " |")

    def add(label: str, values: dict[str, float | None], fmt: Callable[[float], str], ratios: bool = True) -> None:
        base = values[BASELINE]
        cells = [("never" if v is None else fmt(v) + (fmt_ratio(v, base) if ratios and n != BASELINE else ""))
                 for n, v in ((n, values[n]) for n in names)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for key, block in data.items():
        if not key.startswith("bytes_"):
            continue
        label = f"{block['text_bytes'] // 1024} KB / {block['chunks']} chunks"
        add(f"iopub bytes, {label}", {n: med([s["bytes"] for s in block[n]]) for n in names},
            lambda v: f"{v / 1e6:.2f} MB" if v >= 1e6 else f"{v / 1e3:.0f} KB")
        add(f"iopub messages, {label}", {n: med([s["messages"] for s in block[n]]) for n in names},
            lambda v: f"{v:,.0f}")
        add(f"kernel CPU, {label}", {n: med([s["cpu"] for s in block[n]]) for n in names},
            lambda v: f"{v * 1e3:,.0f} ms")
    add("first visible delta − server's first chunk", {n: med(data["first"][n]) for n in names},
        lambda v: f"{v * 1e3:.0f} ms")
    add("interrupt → server sees the disconnect", {n: med([s["disconnect"] for s in data["interrupt"][n]])
                                                   for n in names}, lambda v: f"{v * 1e3:.0f} ms")
    add("interrupt → execute_reply", {n: med([s["reply"] for s in data["interrupt"][n]]) for n in names},
        lambda v: f"{v * 1e3:.0f} ms")
    during = {n: sum(s["during_cell"] for s in data["click"][n]) for n in names}
    latency = {n: med([s["latency"] for s in data["click"][n]]) for n in names}
    cells = [f"{'yes' if during[n] == len(data['click'][n]) else 'no' if not during[n] else 'sometimes'}, "
             f"{latency[n] * 1e3:.0f} ms after the click" for n in names]
    lines.append("| ipywidgets Button click while the cell streams: handled during the cell? | " +
                 " | ".join(cells) + " |")
    stop = statistics.median(data["stop"]) * 1e3
    lines.append(f"| the tool's own widget in the running cell | Stop button → disconnect {stop:.0f} ms | "
                 "none (n/a) | none (n/a) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2, help="rounds of the bytes cases (default 2)")
    p.add_argument("--reps", type=int, default=5, help="repetitions of the other cases (default 5)")
    args = p.parse_args(argv)
    if args.quick:
        result = run([SIZES[0]], 1, 1, args.verbose)
    else:
        result = run(list(SIZES), args.rounds, args.reps, args.verbose)
    result["table"] = table(result)
    print(result["table"])
    env = result["environment"]
    print("\n" + ", ".join(f"{k} {env[k]}" for k in ("agy_jupyter", "chatlab", "jupyter-ai-magics",
                                                     "langchain-openai", "openai", "google-genai", "ipykernel")))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
