"""The notebook layer in a real kernel: iopub bytes, approval clicks, interrupts, time to the first delta.

One ipykernel (over ZMQ, `agy_jupyter.testing.kernel.Kernel`) and one fake Gemini server (in this
process) serve every case, ours and the baselines, in alternating rounds. A `FrontEnd` answers each
StreamView / ApprovalView with "rendered", as JupyterLab does.

  bytes      all iopub bytes and messages caused by one cell (messages whose parent is that cell's
             execute_request), for a reply of 16 KB in 400 chunks and 64 KB in 1,600 chunks (1 ms apart):
               update_display  a cell iterating google-genai's stream itself and calling
                               `handle.update(Markdown(text))` on every chunk (jupyter-ai style)
               append_stdout   the same loop into an `ipywidgets.Output` with `append_stdout(delta)`
                               (chatlab style)
               chat            `%%chat` on a warm kernel (the shared front-end library went out once,
                               with `%load_ext`; that one-time cost is reported on its own row)
  click      time.monotonic() when a Deny/Approve "decision" message leaves this process → when the
             tool starts in the kernel (the tool records time.monotonic(): CLOCK_MONOTONIC is one clock
             for every process on Linux). Baseline: an ipywidgets Button "click" message to a handler
             that records time.monotonic(), while an async cell is awaiting: the floor for "a click
             reaches Python".
  interrupt  kernel interrupt (SIGINT) → the fake server sees the client disconnect, with the stream
             stalled before its first token and mid-stream. Baseline: interrupt of `time.sleep(30)` →
             its execute_reply arrives (the kernel's own interrupt latency); the same measure is
             reported for our cell.
  first      the first comm message carrying a text op arrives on iopub − the server's first chunk
             (request arrival + ttft, ttft = 0.3 s; then 3 more chunks 100 ms apart). Baseline: the bare
             SDK (client.aio) in this process, first chunk parsed − request arrival − ttft. Also reported:
             the first ops message of any kind after the first chunk (the "streaming" status op), i.e. the
             pipeline's own latency without the coalescing window.

Clocks: the fake server stamps time.perf_counter(), the kernel's tool and Button handler time.monotonic();
on Linux both are CLOCK_MONOTONIC, one clock for every process on the machine.

    python benchmarks/bench_notebook.py [--rounds 3] [--reps 20] [--interrupt-reps 10] [--quick] [--json PATH]
"""
from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
from typing import Any, Callable

import _common

from agy_jupyter.testing import Chunk, FakeGemini, Reply
from agy_jupyter.testing.kernel import Execution, FrontEnd, Kernel

WRITER = "writer"    # an agent without tools: streaming, interrupts, first delta
CLICKER = "clicker"  # an agent with one tool behind an approval
TTFT = 0.3           # seconds the server waits before its first chunk (first-delta case)
FIRST_CHUNKS, FIRST_DELAY = 4, 0.1  # then 3 more chunks 100 ms apart: longer than the 50 ms coalescing window,
                                    # so the first text op is not merely the end-of-turn flush
SETTLE = 0.15        # seconds to let a cell reach its await before clicking / interrupting
JITTER = 0.05        # + uniform(0, JITTER): the cell's 50 ms SIGINT poll must not be phase-locked to us
WAIT = 30.0          # far above any sane latency: a broken case fails instead of hanging
CHUNK_DELAY = 0.001
SIZES = ((16 * 1024, 400), (64 * 1024, 1600))
PROMPT = "Write a long answer please"

SETUP = f'''
import asyncio, time
import ipywidgets
from IPython.display import Markdown, display
from google import genai

_bench_client = genai.Client()  # GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL point it at the fake server
_bench_model = {_common.MODEL!r}

tool_started = []
def add(a: int, b: int) -> int:
    """Add two integers."""
    tool_started.append(time.monotonic())
    return a + b

_clicks = []
_waiter = None
def _on_click(_button):
    _clicks.append(time.monotonic())
    waiter = _waiter
    if waiter is not None:
        waiter.get_loop().call_soon_threadsafe(lambda: waiter.done() or waiter.set_result(None))
_button = ipywidgets.Button(description="Approve")
_button.on_click(_on_click)
'''

UPDATE_DISPLAY = '''
_text = ""
_handle = display(Markdown(_text), display_id=True)
for _chunk in _bench_client.models.generate_content_stream(model=_bench_model, contents={prompt!r}):
    _text += _chunk.text or ""
    _handle.update(Markdown(_text))
'''

APPEND_STDOUT = '''
_out = ipywidgets.Output()
display(_out)
for _chunk in _bench_client.models.generate_content_stream(model=_bench_model, contents={prompt!r}):
    _out.append_stdout(_chunk.text or "")
'''

CHECK_PEER = {"update_display": "print(len(_text))",
              "append_stdout": "print(len(''.join(o['text'] for o in _out.outputs)))"}

BUTTON_CELL = '''
_waiter = asyncio.get_running_loop().create_future()
await asyncio.wait_for(_waiter, 30)
'''


def make_text(size: int) -> str:
    """Markdown-ish lines, `size` characters (ASCII: characters = bytes)."""
    lines, total, i = [], 0, 0
    while total < size:
        line = f"Line {i:05d}: the quick brown fox jumps over the lazy dog.\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines)[:size]


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT, step: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s")


def has_text_op(msg: dict) -> bool:
    if msg["msg_type"] != "comm_msg":
        return False
    data = msg["content"].get("data", {})
    content = data.get("content") if data.get("method") == "custom" else None
    return isinstance(content, dict) and any(op[0] == "text" and op[1] for op in content.get("ops", ()))


class Notebook:
    """The kernel, its front end and the fake server every case shares."""

    def __init__(self, fake: FakeGemini):
        self.fake = fake
        self.kernel = Kernel(env={**fake.env(), "AGY_CHAT_TIMEOUT_SECS": "120"})
        self.frontend = FrontEnd(self.kernel)
        load = self.kernel.run("%load_ext agy_jupyter")
        self.load_bytes, self.load_messages = self.traffic(load)
        self.kernel.run(SETUP)
        self.kernel.run(f"%agent create {WRITER} --policy allow")
        self.kernel.run(f"%agent create {CLICKER} --tools add --policy ask")
        self.button = self.kernel.run("print(_button.model_id)").text().strip()
        self.runner = asyncio.Runner()
        self.client = fake.client()
        self.random = random.Random(1)
        self.log_start = 0  # iopub_log index at the latest interrupt

    def settle(self) -> None:
        time.sleep(SETTLE + self.random.uniform(0, JITTER))

    def close(self) -> None:
        self.runner.close()
        self.client.close()
        self.kernel.shutdown()

    # -- reading the kernel's traffic ---------------------------------------------------------

    def traffic(self, execution: Execution) -> tuple[int, int]:
        """Wire bytes and number of iopub messages whose parent is this execution."""
        sizes = [size for _, size, m in list(self.kernel.iopub_log)
                 if m.get("parent_header", {}).get("msg_id") == execution.msg_id]
        return sum(sizes), len(sizes)

    def forget(self, execution: Execution) -> None:
        """Drop the payloads of this execution's messages (the peers' cells produce 100+ MB of them)."""
        execution.messages.clear()
        log = self.kernel.iopub_log
        for index in range(len(log)):
            arrived, size, msg = log[index]
            if msg.get("parent_header", {}).get("msg_id") == execution.msg_id and msg.get("content"):
                log[index] = (arrived, size, {"msg_type": msg["msg_type"], "header": msg.get("header", {}),
                                              "parent_header": msg["parent_header"], "content": {}})

    def value(self, expression: str) -> Any:
        return json.loads(self.kernel.run(f"import json as _json; print(_json.dumps({expression}))").text())

    def widget_text(self, execution: Execution) -> str:
        return execution.view_text()

    # -- 1. iopub bytes ---------------------------------------------------------------------------

    def bytes_case(self, kind: str, text: str, chunks: int) -> dict[str, Any]:
        reply = Reply.text(text, chunks=chunks, delay=CHUNK_DELAY)
        if kind == "chat":
            self.kernel.run(f"%agent clear {WRITER}")
            code = f"%%chat {WRITER}\n{PROMPT}"
        else:
            code = (UPDATE_DISPLAY if kind == "update_display" else APPEND_STDOUT).format(prompt=PROMPT)
        self.fake.enqueue(reply)
        started = _common.clock()
        execution = self.kernel.run(code, timeout=300)
        elapsed = _common.clock() - started
        size, count = self.traffic(execution)
        types: dict[str, list[int]] = {}  # msg_type -> [messages, wire bytes]
        for _, wire, msg in list(self.kernel.iopub_log):
            if msg.get("parent_header", {}).get("msg_id") == execution.msg_id:
                entry = types.setdefault(msg["msg_type"], [0, 0])
                entry[0] += 1
                entry[1] += wire
        if kind == "chat":
            shown = len(self.widget_text(execution))
            custom = sum(1 for m in execution.messages if m["msg_type"] == "comm_msg"
                         and m["content"]["data"].get("method") == "custom")
        else:
            shown = int(self.kernel.run(CHECK_PEER[kind]).text())
            custom = 0
        if shown != len(text):
            raise AssertionError(f"{kind}: the front end would show {shown} of {len(text)} characters")
        self.forget(execution)
        return {"bytes": size, "messages": count, "seconds": elapsed, "types": types, "ops_messages": custom}

    # -- 2. approval click -> tool starts ---------------------------------------------------------

    def click_chat(self, index: int) -> float:
        self.kernel.run(f"%agent clear {CLICKER}")
        self.fake.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id=f"c{index}"), Reply.text("5"))
        before = len(self.frontend.opened["ApprovalView"])
        execution = self.kernel.execute(f"%%chat {CLICKER}\nWhat is 2+3?", wait=False)
        comm = self.frontend.wait_for("ApprovalView", count=before + 1, timeout=WAIT)
        self.settle()  # the cell is awaiting the click
        if execution.done.is_set():
            raise AssertionError("the cell ended before the click")
        clicked = time.monotonic()
        self.kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
        self.kernel.wait(execution, WAIT)
        if execution.reply["content"]["status"] != "ok":
            raise AssertionError(f"the approval cell failed: {execution.errors()}")
        started = self.value("tool_started[-1]")
        self.forget(execution)
        return started - clicked

    def click_button(self, index: int) -> float:
        execution = self.kernel.execute(BUTTON_CELL, wait=False)
        self.settle()
        if execution.done.is_set():
            raise AssertionError("the awaiting cell ended before the click")
        clicked = time.monotonic()
        self.kernel.send_comm(self.button, {"event": "click"})
        self.kernel.wait(execution, WAIT)
        if execution.reply["content"]["status"] != "ok":
            raise AssertionError(f"the button cell failed: {execution.errors()}")
        handled = self.value("_clicks[-1]")
        self.forget(execution)
        return handled - clicked

    # -- 3. interrupt -> disconnect ---------------------------------------------------------------

    def _interrupt(self, execution: Execution) -> tuple[float, float]:
        """Interrupt now; (interrupt time, execute_reply arrival) on this process's perf_counter."""
        self.log_start = len(self.kernel.iopub_log)
        replied: list[float] = []
        watcher = threading.Thread(target=lambda: replied.append(
            _common.clock() if execution.done.wait(WAIT) else float("nan")), daemon=True)
        watcher.start()
        time.sleep(0.01)  # the watcher is waiting
        interrupted = _common.clock()
        self.kernel.interrupt()
        watcher.join(WAIT + 1)
        self.kernel.wait(execution, WAIT)
        if execution.reply["content"]["status"] != "error":
            raise AssertionError("the interrupted cell did not report the interrupt")
        return interrupted, replied[0]

    def interrupt_chat(self, point: str) -> dict[str, float]:
        self.kernel.run(f"%agent clear {WRITER}")
        self.fake.reset()
        if point == "before_first_token":
            self.fake.enqueue(Reply.text("never", ttft=3600))
        else:
            self.fake.enqueue(Reply(chunks=[Chunk.text("Once "), Chunk.text("upon"), Chunk.text(" a time")])
                              .stall_after(2))
        execution = self.kernel.execute(f"%%chat {WRITER}\nTell me a story", wait=False)
        if not self.fake.wait_for_requests(1, WAIT):
            raise AssertionError("no request reached the server")
        if point == "mid_stream":
            wait_until(lambda: self.widget_text(execution) == "Once upon")
        self.settle()
        interrupted, replied = self._interrupt(execution)
        gone = self.fake.wait_for_disconnect(WAIT)
        if gone is None or gone.request_index != 0:
            raise AssertionError(f"no disconnect of the chat's request: {gone}")
        arrivals = {m["msg_type"]: t for t, _, m in reversed(self.kernel.iopub_log[self.log_start:])
                    if m.get("parent_header", {}).get("msg_id") == execution.msg_id}
        self.forget(execution)
        return {"disconnect": gone.time - interrupted, "reply": replied - interrupted,
                "static_copy": arrivals["update_display_data"] - interrupted,
                "error_output": arrivals["error"] - interrupted}

    def interrupt_sleep(self) -> dict[str, float]:
        execution = self.kernel.execute("import time\ntime.sleep(30)", wait=False)
        wait_until(lambda: any(m["msg_type"] == "execute_input" for m in list(execution.messages)))
        self.settle()
        interrupted, replied = self._interrupt(execution)
        arrivals = {m["msg_type"]: t for t, _, m in reversed(self.kernel.iopub_log[self.log_start:])
                    if m.get("parent_header", {}).get("msg_id") == execution.msg_id}
        self.forget(execution)
        return {"reply": replied - interrupted, "error_output": arrivals["error"] - interrupted}

    # -- 4. first delta on the wire ---------------------------------------------------------------

    def first_chat(self, text: str) -> dict[str, float]:
        self.kernel.run(f"%agent clear {WRITER}")
        self.fake.reset()
        self.fake.enqueue(Reply.text(text, chunks=FIRST_CHUNKS, delay=FIRST_DELAY, ttft=TTFT))
        start = len(self.kernel.iopub_log)
        execution = self.kernel.run(f"%%chat {WRITER}\nhello")
        first_chunk = self.fake.requests[-1].time + TTFT
        mine = [(arrived, msg) for arrived, _, msg in self.kernel.iopub_log[start:]
                if msg.get("parent_header", {}).get("msg_id") == execution.msg_id]
        text_op = next((t for t, m in mine if has_text_op(m)), None)
        any_op = next((t for t, m in mine if t >= first_chunk and m["msg_type"] == "comm_msg"
                       and m["content"].get("data", {}).get("method") == "custom"), None)
        self.forget(execution)
        if text_op is None or any_op is None:
            raise AssertionError("no ops message reached the front end after the first chunk")
        return {"text": text_op - first_chunk, "any_op": any_op - first_chunk}

    def first_sdk(self, text: str) -> float:
        async def once() -> float:
            first = None
            stream = await self.client.aio.models.generate_content_stream(model=_common.MODEL, contents="hello")
            async for chunk in stream:
                if first is None and chunk.text:
                    first = _common.clock()
            return first

        self.fake.reset()
        self.fake.enqueue(Reply.text(text, chunks=FIRST_CHUNKS, delay=FIRST_DELAY, ttft=TTFT))
        first = self.runner.run(once())
        return first - (self.fake.requests[-1].time + TTFT)


# -- running and reporting ---------------------------------------------------------------------------

def run(sizes: list[tuple[int, int]], rounds: int, reps: int, interrupt_reps: int, verbose: bool) -> dict:
    progress = _common.progress_printer(verbose)
    data: dict[str, Any] = {}
    with FakeGemini() as fake:
        nb = Notebook(fake)
        try:
            # warm up every path once: imports in the kernel, connections, thread pools
            fake.enqueue(Reply.text("warm up"))
            nb.kernel.run(f"%%chat {WRITER}\nwarm up")
            for kind in ("update_display", "append_stdout", "chat"):
                nb.bytes_case(kind, "warm up " * 8, 4)
            nb.click_chat(0)
            nb.click_button(0)
            nb.first_sdk("warm")

            for size, chunks in sizes:
                text = make_text(size)
                cases = {kind: (lambda kind=kind: nb.bytes_case(kind, text, chunks))
                         for kind in ("chat", "update_display", "append_stdout")}
                data[f"bytes_{size}"] = {"text_bytes": len(text), "chunks": chunks,
                                         **_common.alternate_rounds(cases, rounds, progress)}
            counter = iter(range(1, 10**6))
            data["click"] = _common.alternate_rounds(
                {"button": lambda: nb.click_button(next(counter)), "chat": lambda: nb.click_chat(next(counter))},
                reps, progress)
            data["interrupt"] = _common.alternate_rounds(
                {"sleep": nb.interrupt_sleep, "before_first_token": lambda: nb.interrupt_chat("before_first_token"),
                 "mid_stream": lambda: nb.interrupt_chat("mid_stream")}, interrupt_reps, progress)
            short = make_text(1000)
            data["first"] = _common.alternate_rounds(
                {"sdk": lambda: nb.first_sdk(short), "chat": lambda: nb.first_chat(short)}, reps, progress)
            data["load"] = {"bytes": nb.load_bytes, "messages": nb.load_messages}
        finally:
            nb.close()
    return {"benchmark": "notebook", "environment": _common.environment(),
            "params": {"sizes": sizes, "rounds": rounds, "reps": reps, "interrupt_reps": interrupt_reps,
                       "chunk_delay_s": CHUNK_DELAY, "ttft_s": TTFT},
            "goals": {"click": "approval click → tool starts ≤ 20 ms",
                      "interrupt": "interrupt → server disconnect ≤ 100 ms",
                      "first": "first delta on the wire − server's first chunk ≤ 20 ms"},
            "rows": rows_for(data), "notes": notes_for(data), "samples": data}


PEERS = {"update_display": "update_display(Markdown) per chunk", "append_stdout": "Output.append_stdout per chunk"}


def ms_stats(values: list[float]) -> dict[str, float]:
    """summarize() in milliseconds, plus p90."""
    values = [v * 1e3 for v in values]
    return {**_common.summarize(values), "p90": _common.percentile(values, 90)}


def rows_for(data: dict[str, Any]) -> list[dict]:
    rows = []
    for key, block in data.items():
        if not key.startswith("bytes_"):
            continue
        label, text_bytes = f"{block['text_bytes'] // 1024} KB/{block['chunks']}", block["text_bytes"]
        for kind, title in (*PEERS.items(), ("chat", "%%chat")):
            rows.append(_common.row(f"iopub bytes {label}: {title}", "B per text B",
                                    _common.summarize(s["bytes"] / text_bytes for s in block[kind]), spread="max"))
        for kind, title in PEERS.items():  # ours ÷ peer, as a percentage: the table prints two decimals
            share = _common.summarize(100 * o["bytes"] / t["bytes"] for o, t in zip(block["chat"], block[kind]))
            rows.append(_common.row(f"iopub bytes {label}: %%chat ÷ {kind}", "%", share, spread="max"))
        for kind, title in (*PEERS.items(), ("chat", "%%chat")):
            rows.append(_common.row(f"iopub messages {label}: {title}", "messages",
                                    _common.summarize(s["messages"] for s in block[kind]), spread="max"))
    rows.append(_common.row("one-time: %load_ext (front-end library)", "bytes",
                            _common.summarize([data["load"]["bytes"]]), spread="max"))

    click = {k: ms_stats(v) for k, v in data["click"].items()}
    rows.append(_common.row("click → Button handler (async cell awaiting)", "ms", click["button"], spread="p90"))
    rows.append(_common.row("approval click → tool starts", "ms", click["chat"], spread="p90",
                            baseline="Button handler",
                            ratio_value=_common.ratio(click["chat"]["median"], click["button"]["median"])))

    inter = data["interrupt"]
    base = ms_stats([s["reply"] for s in inter["sleep"]])
    rows.append(_common.row("interrupt time.sleep cell → execute_reply", "ms", base, spread="max"))
    for point in ("before_first_token", "mid_stream"):
        for what, title in (("disconnect", "server disconnect"), ("reply", "execute_reply")):
            stats = ms_stats([s[what] for s in inter[point]])
            rows.append(_common.row(f"interrupt %%chat {point.replace('_', ' ')} → {title}", "ms", stats,
                                    spread="max", baseline="time.sleep → execute_reply",
                                    ratio_value=_common.ratio(stats["median"], base["median"])))

    sdk = ms_stats(data["first"]["sdk"])
    rows.append(_common.row("first chunk − server's first chunk: bare SDK here", "ms", sdk, spread="p90"))
    for what, title in (("text", "first text op"), ("any_op", "first ops message (status)")):
        stats = ms_stats([s[what] for s in data["first"]["chat"]])
        rows.append(_common.row(f"{title} on iopub − server's first chunk: %%chat", "ms", stats, spread="p90",
                                baseline="bare SDK", ratio_value=_common.ratio(stats["median"], sdk["median"])))
    return rows


def notes_for(data: dict[str, Any]) -> list[str]:
    median = statistics.median
    notes = []
    for key, block in data.items():
        if not key.startswith("bytes_"):
            continue
        parts = [f"{kind} {median(s['bytes'] for s in block[kind]) / 1e6:.3f} MB in "
                 f"{median(s['messages'] for s in block[kind]):.0f} messages, "
                 f"{median(s['seconds'] for s in block[kind]):.2f} s" for kind in ("chat", *PEERS)]
        notes.append(f"{block['text_bytes']:,} B in {block['chunks']} chunks: " + "; ".join(parts))
        types = block["chat"][-1]["types"]
        notes.append("  %%chat by message type (last round): " + ", ".join(
            f"{name} {count}× {size:,} B" for name, (count, size) in sorted(types.items(), key=lambda kv: -kv[1][1])))
    notes.append(f"one-time %load_ext: {data['load']['bytes']:,} bytes in {data['load']['messages']} messages")
    for name, values in data["click"].items():
        stats = ms_stats(values)
        notes.append(f"click {name}: median {stats['median']:.2f} ms, p90 {stats['p90']:.2f}, max {stats['max']:.2f}")
    for point, samples in data["interrupt"].items():
        parts = [f"{what} {median(s[what] for s in samples) * 1e3:.1f}" for what in samples[0]]
        notes.append(f"interrupt {point} → (median ms): " + ", ".join(parts))
    first = {what: median(s[what] for s in data["first"]["chat"]) * 1e3 for what in ("text", "any_op")}
    sdk = median(data["first"]["sdk"]) * 1e3
    notes.append(f"first delta: %%chat − bare SDK = {first['text'] - sdk:.2f} ms (medians); the first ops message "
                 f"after the first chunk (status) − bare SDK = {first['any_op'] - sdk:.2f} ms")
    return notes


def main(argv: list[str] | None = None) -> dict:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds of the bytes cases (default 3)")
    p.add_argument("--reps", type=int, default=20, help="clicks and first deltas per case (default 20)")
    p.add_argument("--interrupt-reps", type=int, default=10, help="interrupts per case (default 10)")
    args = p.parse_args(argv)
    if args.quick:
        result = run([SIZES[0]], 1, 4, 2, args.verbose)  # a smoke test: ~20 s, most of it kernel start-up
    else:
        result = run(list(SIZES), args.rounds, args.reps, args.interrupt_reps, args.verbose)
    _common.report(result, args)
    return result


if __name__ == "__main__":
    main()
