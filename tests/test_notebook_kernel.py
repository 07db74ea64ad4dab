"""The magics and widgets in a real kernel, driven with the messages a browser sends (no browser here)."""
from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME
from agy_jupyter.testing import Chunk, FakeGemini, Reply, Usage
from agy_jupyter.testing.kernel import FrontEnd, Kernel, loaded_kernel

_names = itertools.count(1)

TOOL_CODE = '''
import time
tool_started = []
def add(a: int, b: int) -> int:
    """Add two integers."""
    tool_started.append(time.perf_counter())
    return a + b
'''


def new_name() -> str:
    return f"a{next(_names)}"


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server):
    with loaded_kernel(server.env()) as k:
        k.run(TOOL_CODE)
        yield k


@pytest.fixture
def fresh(server):
    server.reset()
    return server


def stream_comm(kernel, execution) -> str:
    """The StreamView opened by this cell."""
    for _, _, msg in kernel.iopub_log:
        if (msg["msg_type"] == "comm_open" and msg["parent_header"].get("msg_id") == execution.msg_id
                and str(msg["content"]["data"]["state"].get("_anywidget_id", "")).endswith("StreamView")):
            return msg["content"]["comm_id"]
    raise AssertionError("the cell opened no StreamView")


def widget_text(kernel, comm_id) -> tuple[str, int]:
    """The reply text a front end shows after applying every ops message, and how many messages."""
    text, count = "", 0
    for content in kernel.custom_messages(comm_id):
        count += 1
        if content.get("reset"):
            text = ""
        text += "".join(op[1] for op in content["ops"] if op[0] == "text")
    return text, count


def static_copy(execution) -> dict:
    updates = [m for m in execution.messages if m["msg_type"] == "update_display_data"]
    assert updates, "no static copy was written"
    return updates[-1]["content"]["data"]


def wait_until(predicate, timeout=10.0, step=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# -- streaming --------------------------------------------------------------------------------------

def test_chat_streams_deltas_and_leaves_a_static_copy(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    reply = "Hello **world**, this reply arrives in pieces.\n\n```python\nprint('hi')\n```"
    fresh.enqueue(Reply.text(reply, chunks=10, delay=0.03))
    execution = kernel.run(f"%%chat {name} -o answer\nSay hello")
    shown, messages = widget_text(kernel, stream_comm(kernel, execution))
    assert shown == reply and messages >= 3  # deltas, coalesced, several messages
    static = static_copy(execution)
    assert "<strong>world</strong>" in static["text/html"] and static["text/plain"].startswith(reply + "\n[")
    assert static[TRANSCRIPT_MIME]["agent"] == name and static[TRANSCRIPT_MIME]["status"] == "done"
    assert kernel.run("print(answer == %r)" % reply).text().strip() == "True"


def test_64_kb_in_1600_chunks_costs_a_bounded_multiple_of_the_text(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("warm up"))
    kernel.run(f"%%chat {name}\nwarm up")  # one-time costs (the shared front-end library) are not per reply
    text = "".join(f"Line {i:05d}: the quick brown fox jumps over the lazy dog.\n" for i in range(1100))[:65536]
    fresh.enqueue(Reply.text(text, chunks=1600, delay=0.001))
    execution = kernel.run(f"%%chat {name}\nA long answer please")
    used = kernel.bytes_for(execution)
    shown, messages = widget_text(kernel, stream_comm(kernel, execution))
    assert shown == text
    sizes = [size for _, size, m in kernel.iopub_log if m.get("parent_header", {}).get("msg_id") == execution.msg_id]
    envelopes = len(sizes) * min(sizes)  # the smallest message (a status) is all envelope: header, ids, signature
    payload = used - envelopes
    print(f"\n64 KB / 1600 chunks: {used:,} iopub bytes = {used / len(text):.2f}x the text in {len(sizes)} messages "
          f"({messages} widget messages); {payload / len(text):.2f}x without the envelopes")
    # The total depends on timing: the coalescing window decides how many messages carry the deltas (CI saw 3.12x
    # with 56 widget messages where this machine sees 2.97x with 43), and each message costs its ~570-byte envelope.
    # What must stay O(n) is the payload: the deltas once (~1.0x) + the static copy, which holds the text once as
    # sanitized HTML with its stylesheet (~1.1x), + the transcript's metadata. Measured 2.48x.
    assert payload <= 2.6 * len(text)
    assert len(sizes) <= 200  # coalesced: 1600 chunks must not become 1600 messages


# -- approvals --------------------------------------------------------------------------------------

def _approval_comm(kernel, before: int) -> str:
    return kernel.frontend.wait_for("ApprovalView", count=before + 1)


def test_approve_click_resumes_the_tool(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id="c1"), Reply.text("It is 5."))
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"%%chat {name} -o r\nWhat is 2+3?", wait=False)
    comm = _approval_comm(kernel, before)
    time.sleep(0.1)  # the cell is still running, waiting for the click
    assert not execution.done.is_set()
    kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
    kernel.wait(execution)
    assert execution.reply["content"]["status"] == "ok"
    assert fresh.requests[1].function_response("c1") == {"result": 5}
    assert "<p>It is 5.</p>" in static_copy(execution)["text/html"]


def test_only_a_well_formed_decision_on_the_approvals_own_view_counts(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id="c1"), Reply.text("It is 5."))
    runs_before = kernel.run("print(len(tool_started))").text()
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"%%chat {name}\nWhat is 2+3?", wait=False)
    comm = _approval_comm(kernel, before)
    forged = [(stream_comm(kernel, execution), {"type": "decision", "approved": True, "always": True}),  # another view
              (comm, {"type": "decision", "approved": "false"}),  # a string, truthy: not a decision
              (comm, {"type": "decision", "approved": 1}),
              (comm, {"type": "approve"}),
              (comm, ["decision", True])]
    for target, content in forged:
        kernel.send_comm(target, content)
    time.sleep(0.5)
    assert not execution.done.is_set() and len(fresh.requests) == 1  # still waiting for a real answer
    kernel.send_comm(comm, {"type": "decision", "approved": False, "reason": "no", "always": False})
    kernel.wait(execution)
    kernel.send_comm(comm, {"type": "decision", "approved": True, "always": True})  # after it was settled
    time.sleep(0.3)
    assert "no" in fresh.requests[1].function_response("c1")["error"]
    assert kernel.run("print(len(tool_started))").text() == runs_before  # the tool never ran
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c2"), Reply.text("?"))
    again = kernel.execute(f"%%chat {name}\n1+1", wait=False)
    assert _approval_comm(kernel, before + 1)  # the late "always" allowed nothing: it asks again
    kernel.interrupt()
    kernel.wait(again)


def test_deny_with_a_reason_reaches_the_model(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id="c1"), Reply.text("OK, I won't."))
    runs_before = kernel.run("print(len(tool_started))").text()
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"%%chat {name}\nadd", wait=False)
    kernel.send_comm(_approval_comm(kernel, before),
                     {"type": "decision", "approved": False, "reason": "use mental arithmetic", "always": False})
    kernel.wait(execution)
    assert "use mental arithmetic" in fresh.requests[1].function_response("c1")["error"]
    assert kernel.run("print(len(tool_started))").text() == runs_before  # the tool never ran


def test_always_allow_skips_the_next_approval(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"),
                  Reply.function_call("add", {"a": 2, "b": 2}, id="c2"), Reply.text("4"))
    before = len(kernel.frontend.opened["ApprovalView"])
    first = kernel.execute(f"%%chat {name}\n1+1", wait=False)
    kernel.send_comm(_approval_comm(kernel, before), {"type": "decision", "approved": True, "reason": "",
                                                      "always": True})
    kernel.wait(first)
    kernel.run(f"%%chat {name}\n2+2")
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 1
    assert fresh.requests[3].function_response("c2") == {"result": 4}


def test_always_for_these_arguments_asks_again_for_other_arguments(kernel, fresh):
    """The widget's "always, only these arguments": the same call runs unasked, another one asks."""
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"),
                  Reply.function_call("add", {"a": 1, "b": 1}, id="c2"), Reply.text("2 again"),
                  Reply.function_call("add", {"a": 2, "b": 2}, id="c3"), Reply.text("4"))
    before = len(kernel.frontend.opened["ApprovalView"])
    first = kernel.execute(f"%%chat {name}\n1+1", wait=False)
    kernel.send_comm(_approval_comm(kernel, before), {"type": "decision", "approved": True, "reason": "",
                                                      "always": True, "scope": "args"})
    kernel.wait(first)
    kernel.run(f"%%chat {name}\n1+1 again")
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 1  # the same arguments: not asked
    third = kernel.execute(f"%%chat {name}\n2+2", wait=False)
    kernel.send_comm(_approval_comm(kernel, before + 1), {"type": "decision", "approved": True, "reason": "",
                                                          "always": False, "scope": "args"})
    kernel.wait(third)
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 2  # other arguments: asked
    assert [fresh.requests[i].function_response(c) for i, c in [(1, "c1"), (3, "c2"), (5, "c3")]] == [
        {"result": 2}, {"result": 2}, {"result": 4}]


def test_the_approval_view_carries_the_tools_preview(kernel, fresh):
    name = new_name()
    kernel.run("import dataclasses\nfrom agy_jupyter.agent.tools import as_tool\n"
               "def run_code(code: str) -> str:\n    return 'ran'\n"
               "run_code_tool = dataclasses.replace(as_tool(run_code), effect='execute', preview=lambda args: "
               "{'kind': 'code', 'text': args['code'], 'language': 'python'})")
    kernel.run(f"%agent create {name} --tools run_code_tool")
    fresh.enqueue(Reply.function_call("run_code", {"code": "print(1)"}, id="c1"), Reply.text("done"))
    since = len(kernel.iopub_log)
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"%%chat {name}\nrun it", wait=False)
    comm = _approval_comm(kernel, before)
    opened = next(m for m in kernel.comm_opens(since) if m["content"]["comm_id"] == comm)
    state = opened["content"]["data"]["state"]
    assert state["preview"] == {"kind": "code", "text": "print(1)", "language": "python"}
    assert json.loads(state["args_json"]) == {"code": "print(1)"}
    kernel.send_comm(comm, {"type": "decision", "approved": False, "reason": "", "always": False})
    kernel.wait(execution)


def test_policy_allow_with_an_execute_tool_prints_one_warning_line(kernel, fresh):
    kernel.run("import dataclasses\nfrom agy_jupyter.agent.tools import as_tool\n"
               "shell_tool = dataclasses.replace(as_tool(add), name='shell', effect='execute')")
    warned = kernel.run(f"%agent create {new_name()} --tools shell_tool,add --policy allow")
    lines = [line for line in warned.text().splitlines() if "without asking" in line]
    assert len(lines) == 1 and re.search(r"without asking: (.*?) \(", lines[0]).group(1) == "shell"
    quiet = kernel.run(f"%agent create {new_name()} --tools shell_tool")  # the default asks: no warning
    assert "without asking" not in quiet.text()


def test_deny_with_always_denies_and_the_next_call_asks_again(kernel, fresh):
    """The widget's Deny with "always" ticked: this call is denied, and "always" never turns it into an allow."""
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("denied once"),
                  Reply.function_call("add", {"a": 2, "b": 2}, id="c2"), Reply.text("denied twice"))
    runs_before = kernel.run("print(len(tool_started))").text()
    before = len(kernel.frontend.opened["ApprovalView"])
    first = kernel.execute(f"%%chat {name}\n1+1", wait=False)
    kernel.send_comm(_approval_comm(kernel, before), {"type": "decision", "approved": False, "always": True,
                                                      "reason": "no adding"})
    kernel.wait(first)
    second = kernel.execute(f"%%chat {name}\n2+2", wait=False)
    # the second call is asked about again: a new view opens, and it is denied too
    kernel.send_comm(_approval_comm(kernel, before + 1), {"type": "decision", "approved": False, "always": False,
                                                          "reason": ""})
    kernel.wait(second)
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 2
    assert "no adding" in fresh.requests[1].function_response("c1")["error"]
    assert "denied" in fresh.requests[3].function_response("c2")["error"]
    assert kernel.run("print(len(tool_started))").text() == runs_before  # the tool never ran


def test_approval_timeout_counts_as_a_deny(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask\n%config AgyMagics.approval_timeout = 0.5")
    try:
        fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("no answer"))
        execution = kernel.run(f"%%chat {name}\n1+1")
    finally:
        kernel.run("%config AgyMagics.approval_timeout = 300.0")
    assert "did not answer within 0.5 s" in fresh.requests[1].function_response("c1")["error"]
    assert "no answer" in static_copy(execution)["text/plain"].splitlines()
    last = kernel.run(f"from agy_jupyter.agent.directory import agents\nprint(agents.get('{name}').last_turn().tool_calls[0].status)")
    assert last.text().strip() == "denied"


def test_a_failed_reply_is_one_clear_message(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.error(429, retry_delay=30, quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                              quota_value=50))
    execution = kernel.execute(f"%%chat {name}\nhi")
    assert execution.reply["content"]["status"] == "error"  # Run-All stops here
    [error] = execution.errors()
    assert error["ename"] == "QuotaExhausted" and len(error["traceback"]) == 1
    assert "wait for the quota to reset" in error["traceback"][0]
    static = static_copy(execution)
    assert '<div class="agy-error-message">' in static["text/html"] and static[TRANSCRIPT_MIME]["status"] == "error"
    assert "QuotaExhausted" in kernel.run(f"%agent info {name}").text()  # the full detail


# -- interrupt --------------------------------------------------------------------------------------

@pytest.mark.parametrize("point", ["before the first token", "mid-stream"])
def test_interrupt_cancels_the_turn_and_the_next_chat_works(kernel, fresh, point):
    name = new_name()
    kernel.run(f"%agent create {name}")
    if point == "before the first token":
        fresh.enqueue(Reply.text("never", ttft=30))
    else:
        fresh.enqueue(Reply(chunks=[Chunk.text("Once "), Chunk.text("upon"), Chunk.text(" a time")]).stall_after(2))
    execution = kernel.execute(f"%%chat {name}\nTell me a story", wait=False)
    assert wait_until(lambda: fresh.requests, timeout=10)
    if point == "mid-stream":
        assert wait_until(lambda: "Once upon" in widget_text(kernel, stream_comm(kernel, execution))[0])
    interrupted = time.perf_counter()
    kernel.interrupt()
    disconnect = fresh.wait_for_disconnect(timeout=10)
    kernel.wait(execution, timeout=10)
    assert disconnect is not None
    print(f"\ninterrupt ({point}) -> server disconnect: {(disconnect.time - interrupted) * 1000:.1f} ms")
    assert disconnect.time - interrupted < 1.0
    assert execution.reply["content"]["status"] == "error"  # the cell reports the interrupt, so Run-All stops
    assert static_copy(execution)[TRANSCRIPT_MIME]["status"] == "cancelled"
    fresh.enqueue(Reply.text("back again"))
    after = kernel.run(f"%%chat {name} -o again\nStill there?")
    assert static_copy(after)["text/plain"].splitlines()[0] == "back again"


# -- background -------------------------------------------------------------------------------------

def test_background_output_stays_in_its_cell_and_stop_works(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("streaming in the background " * 4, chunks=20, delay=0.05))
    started = time.perf_counter()
    background = kernel.run(f"%%chat {name} --background -o bg\nTake your time")
    assert time.perf_counter() - started < 1.0  # returned at once
    other = kernel.run("import time\nfor i in range(3):\n    print('other', i)\n    time.sleep(0.3)")
    assert wait_until(lambda: any(m["msg_type"] == "update_display_data" for m in background.messages), timeout=10)
    assert "background" in static_copy(background)["text/plain"]
    assert all("background" not in json.dumps(m["content"]) for m in other.outputs)
    assert other.text() == "other 0\nother 1\nother 2\n"
    assert kernel.run("print(bg.startswith('streaming in'))").text().strip() == "True"

    fresh.enqueue(Reply.text("a b c d", chunks=4).stall_after(1))
    stoppable = kernel.run(f"%%chat {name} --background\nStall")
    comm = stream_comm(kernel, stoppable)
    assert wait_until(lambda: widget_text(kernel, comm)[0])
    kernel.send_comm(comm, {"type": "stop"})
    assert fresh.wait_for_disconnect(timeout=5) is not None
    assert wait_until(lambda: any(m["msg_type"] == "update_display_data" for m in stoppable.messages))
    assert static_copy(stoppable)[TRANSCRIPT_MIME]["status"] == "cancelled"


def test_agent_cancel_stops_a_background_reply(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("x y z", chunks=3).stall_after(1))
    background = kernel.run(f"%%chat {name} --background\nStall")
    assert wait_until(lambda: widget_text(kernel, stream_comm(kernel, background))[0])
    assert "Cancelled" in kernel.run(f"%agent cancel {name}").text()
    assert fresh.wait_for_disconnect(timeout=5) is not None


# -- bad input and the fallback ---------------------------------------------------------------------

@pytest.mark.parametrize("line", ["%agent", "%agent bogus", "%agent create", "%agent info ghost",
                                  "%agent create x --temperature hot", "%agent use nobody",
                                  "%%chat ghost\nhi", "%%chat -o 1x\nhi", "%%chat --nope\nhi"])
def test_bad_lines_give_one_clear_line(kernel, line):
    execution = kernel.execute(line)
    printed = execution.text() + json.dumps(execution.errors())
    assert "Traceback" not in printed and "UsageError" in printed
    assert "usage:" in printed or "agent" in printed


def test_blocking_fallback_with_autoawait_off(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("I could not add."))
    kernel.run("%autoawait off")
    try:
        execution = kernel.run(f"%%chat {name} -o fb\nadd 1 and 2")
    finally:
        kernel.run("%autoawait on")
    assert not [m for m in execution.messages if m["msg_type"] == "comm_open"]  # no widget nobody can click
    assert "nobody can approve" in fresh.requests[1].function_response("c1")["error"]
    assert "I could not add." in static_copy(execution)["text/plain"].splitlines()


def test_extension_autoloads_from_ipython_config(server):
    autoloaded = Kernel(env=server.env(), extra_arguments=["--InteractiveShellApp.extensions=agy_jupyter"])
    try:
        assert "No agents yet" in autoloaded.run("%agent list").text()
    finally:
        autoloaded.shutdown()


def _pager_text(execution) -> str:
    return "".join(p.get("data", {}).get("text/plain", "") for p in execution.reply["content"].get("payload", []))


def test_interrupt_cancels_a_blocking_fallback_reply(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("a b c", chunks=3).stall_after(1))
    kernel.run("%autoawait off")
    try:
        execution = kernel.execute(f"%%chat {name}\nstall", wait=False)
        assert wait_until(lambda: fresh.requests, timeout=10)
        time.sleep(0.2)
        interrupted = time.perf_counter()
        kernel.interrupt()
        disconnect = fresh.wait_for_disconnect(timeout=10)
        kernel.wait(execution, timeout=10)
    finally:
        kernel.run("%autoawait on")
    assert disconnect is not None and disconnect.time - interrupted < 1.0
    assert execution.reply["content"]["status"] == "error"
    assert static_copy(execution)[TRANSCRIPT_MIME]["status"] == "cancelled"


def test_help_config_and_no_key_in_sight(kernel, server):
    agent_help = _pager_text(kernel.run("%agent?"))
    assert "create" in agent_help and "--policy" in agent_help and "Examples" in agent_help
    chat_help = _pager_text(kernel.run("%%chat?\n"))
    assert "--background" in chat_help and "--interpolate" in chat_help
    config = kernel.run("%config AgyMagics").text()
    assert "approval_timeout" in config and "headless_approval" in config
    kernel.run("%config AgyMagics.coalesce_interval = 0.1")
    assert "0.1" in kernel.run("print(get_ipython().magics_manager.registry['AgyMagics'].coalesce_interval)").text()
    kernel.run("%config AgyMagics.coalesce_interval = 0.05")
    effective = kernel.run("%agent config").text()
    assert "backend: gemini" in effective and server.env()["GEMINI_API_KEY"] not in effective


# -- threads: the kernel's main thread owns the namespace and creates the widgets ----------------------

BUSY_CELL = '''
import time
seen_while_busy = []
started = time.monotonic()
while time.monotonic() - started < 2.0:
    seen_while_busy.append({name!r} in globals())
    time.sleep(0.02)
print(any(seen_while_busy))
'''


def test_background_output_variable_is_written_on_the_main_thread(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("late answer", ttft=0.3))
    kernel.run(f"%%chat {name} --background -o late_{name}\nanswer later")
    # the reply ends while a plain cell runs: its namespace must not change under it (no write from
    # the runtime thread); the variable appears once the main thread is free again
    assert kernel.run(BUSY_CELL.format(name=f"late_{name}")).text().strip() == "False"
    assert wait_until(lambda: kernel.run(f"print('late_{name}' in globals())").text().strip() == "True", step=0.1)
    assert kernel.run(f"print(late_{name})").text() == "late answer\n"
    # an awaiting cell leaves the main thread free: the write happens while it waits
    fresh.enqueue(Reply.text("while awaiting", ttft=0.3))
    kernel.run(f"%%chat {name} --background -o awaited_{name}\nagain")
    waited = kernel.run(f"import asyncio\nawait asyncio.sleep(2.0)\nprint(awaited_{name})")
    assert waited.text() == "while awaiting\n"


def _idle_index(kernel, execution) -> int:
    return next(i for i, (_, _, m) in enumerate(kernel.iopub_log)
                if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                and m["parent_header"].get("msg_id") == execution.msg_id)


def test_approval_view_is_created_on_the_main_thread(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add --policy ask")
    kernel.run("import threading\nfrom agy_jupyter.notebook import widgets as _w\n"
               "approval_threads = []\n_init = _w.ApprovalView.__init__\n"
               "def _recording_init(self, *a, **k):\n"
               "    approval_threads.append(threading.current_thread().name)\n    _init(self, *a, **k)\n"
               "_w.ApprovalView.__init__ = _recording_init")
    try:
        fresh.enqueue(Reply.function_call("add", {"a": 4, "b": 5}, id="c1", ttft=0.5), Reply.text("9"))
        before = len(kernel.frontend.opened["ApprovalView"])
        kernel.run(f"%%chat {name} --background -o nine\nadd 4 and 5")
        busy = kernel.run(BUSY_CELL.format(name="nothing"))  # the approval is asked for while this runs
        comm = _approval_comm(kernel, before)
        opened = next(i for i, (_, _, m) in enumerate(kernel.iopub_log)
                      if m["msg_type"] == "comm_open" and m["content"]["comm_id"] == comm)
        assert opened > _idle_index(kernel, busy)  # created by the main thread once it was free
        kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
        assert wait_until(lambda: kernel.run("print('nine' in globals())").text().strip() == "True", step=0.1)
        assert kernel.run("print(approval_threads, nine)").text() == "['MainThread'] 9\n"
        assert fresh.requests[1].function_response("c1") == {"result": 9}
    finally:
        kernel.run("_w.ApprovalView.__init__ = _init")


# -- presence: only a front end that rendered this very view can answer it ---------------------------

def test_after_the_tab_closes_approvals_are_decided_after_render_grace(server):
    server.reset()
    closing = Kernel(env={**server.env(), "AGY_CHAT_TIMEOUT_SECS": "60"})
    try:
        frontend = FrontEnd(closing)
        closing.run("%load_ext agy_jupyter\n%config AgyMagics.render_grace = 1.0\n"
                    "%config AgyMagics.approval_timeout = 120.0")
        closing.run(TOOL_CODE + "\n%agent create seen --tools add --policy ask")
        server.enqueue(Reply.text("a front end shows this"))
        closing.run("%%chat\nhello")
        assert frontend.opened["StreamView"]  # a front end rendered that reply, and is known by its session
        seen = closing.run("from agy_jupyter.notebook.presence import front_ends\nprint(front_ends.sessions())")
        assert seen.text().strip() == repr([closing.kc.session.session])
        frontend.close()
        server.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("not allowed"))
        started = time.monotonic()
        execution = closing.execute("%%chat\n1+1", timeout=30)
        assert execution.reply["content"]["status"] == "ok"
        assert time.monotonic() - started < 20  # render_grace (1 s), not approval_timeout (120 s)
        assert "nobody can approve 'add' here (no front end showed the approval within 1 s" in \
            server.requests[2].function_response("c1")["error"]
    finally:
        closing.shutdown()


# -- display_chat: what %%chat does, as a call --------------------------------------------------------

def test_await_display_chat_shows_the_widget_takes_a_click_and_leaves_the_static_copy(kernel, fresh):
    name = new_name()
    kernel.run(f"import agy_jupyter as agy\nfrom agy_jupyter.agent.directory import agents\n"
               f"{name} = agents.create({name!r}, tools=[add])")  # default policy: ask
    fresh.enqueue(Reply.function_call("add", {"a": 20, "b": 22}, id="c1"),
                  Reply.text("It is **42**.", chunks=3, delay=0.02))
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"response = await agy.display_chat({name}, 'What is 20 + 22?')", wait=False)
    comm = _approval_comm(kernel, before)
    kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
    kernel.wait(execution)
    assert execution.reply["content"]["status"] == "ok", execution.errors()
    shown, _ = widget_text(kernel, stream_comm(kernel, execution))  # the live widget, in this cell
    assert shown == "It is **42**."
    assert fresh.requests[1].function_response("c1") == {"result": 42}
    static = static_copy(execution)  # the widget's output was replaced by the static copy
    plain = static["text/plain"].splitlines()
    assert plain[:2] == ['[tool add: ok] {"a": 20, "b": 22} -> {"result": 42}', "It is **42**."]
    assert static[TRANSCRIPT_MIME]["status"] == "done"
    assert kernel.run("print(type(response).__name__, response.text)").text() == "ChatResponse It is **42**.\n"


def test_display_chat_by_name_with_output_and_background(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("stored", chunks=2))
    kernel.run(f"import agy_jupyter as agy\nawait agy.display_chat({name!r}, 'hi', output='stored_{name}')")
    assert kernel.run(f"print(stored_{name})").text() == "stored\n"
    fresh.enqueue(Reply.text("later", chunks=2, delay=0.1))
    started = time.monotonic()
    background = kernel.run(f"stream = await agy.display_chat({name!r}, 'hi', background=True, output='bg_{name}')")
    assert time.monotonic() - started < 1.0
    assert kernel.run("print((await stream).text)").text() == "later\n"
    assert wait_until(lambda: any(m["msg_type"] == "update_display_data" for m in background.messages))
    assert wait_until(lambda: kernel.run(f"print('bg_{name}' in globals())").text().strip() == "True", step=0.1)


def test_display_chat_blocking_in_a_kernel_decides_approvals_by_the_setting(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --tools add")
    fresh.enqueue(Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("I could not add."))
    execution = kernel.run(f"import agy_jupyter as agy\nr = agy.display_chat_blocking({name!r}, 'add 1 and 2')\n"
                           "print(r.text)")
    assert not [m for m in execution.messages if m["msg_type"] == "comm_open"]  # no button nobody can click
    assert "nobody can approve" in fresh.requests[1].function_response("c1")["error"]
    plain = static_copy(execution)["text/plain"].splitlines()
    assert plain[0].startswith("[tool add: denied]") and plain[1] == "I could not add."
    assert execution.text() == "I could not add.\n"


# -- every output is readable as text/plain (jupyter console, logs) ----------------------------------

OBJECT_REPR = re.compile(r"<[\w.]+ object( at 0x[0-9a-f]+)?>|^\w+\(")


def plain_outputs(execution) -> list[str]:
    return [m["content"]["data"]["text/plain"] for m in execution.outputs
            if m["msg_type"] in ("display_data", "execute_result")]


def test_every_output_has_a_readable_text_plain(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("plain words", chunks=3, delay=0.05, usage=Usage(prompt=1200, output=34)))
    chat = kernel.run(f"%%chat {name}\nhello")
    live = [m["content"]["data"] for m in chat.messages if m["msg_type"] == "display_data"]
    assert live and all(not OBJECT_REPR.search(data["text/plain"]) for data in live), live
    assert f"[{name}:" in live[0]["text/plain"]  # the reply's progress, not "VBox(children=...)"
    for line in ("list", f"info {name}", f"usage {name}", "config"):
        execution = kernel.run(f"%agent {line}")
        plain = plain_outputs(execution)
        assert all(not OBJECT_REPR.search(text) for text in plain), (line, plain)
        assert plain or execution.text(), line
    usage = kernel.run(f"%agent usage {name}")
    [result] = [m["content"]["data"] for m in usage.outputs if m["msg_type"] == "execute_result"]
    table = result["text/plain"]
    assert "Prompt" in table and "1,200" in table and "Context:" in table and "≈$" in table
    assert "application/vnd.jupyter.widget-view+json" in result  # the widget for front ends that render it


def test_history_has_a_readable_text_plain(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name}")
    fresh.enqueue(Reply.text("remember me"))
    kernel.run(f"%%chat {name}\nhello")
    plain = plain_outputs(kernel.run(f"%agent history {name}"))
    assert plain and all(not OBJECT_REPR.search(text) for text in plain) and "remember me" in plain[0], plain
