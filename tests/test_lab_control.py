"""The JupyterLab extension's comm target (agy_jupyter/notebook/lab_control.py) in a real kernel.

The messages are the ones the extension's "Stop agents" command sends (labextension/lab/commands.ts:
a comm_open to `agy_jupyter.control` with {"action": "stop"}). tests/browser/test_labextension.py clicks
through the same path in JupyterLab.
"""
from __future__ import annotations

import time
import uuid

import pytest

from agy_jupyter.notebook.lab_control import TARGET
from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import Kernel, loaded_kernel


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


def ask(kernel: Kernel, data: dict, timeout: float = 10.0) -> tuple[list[dict], bool]:
    """Open a comm to the target with `data`; the answers it sent and whether the kernel closed it."""
    comm_id = uuid.uuid4().hex
    kernel._send_shell(kernel.kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": TARGET, "data": data}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [m for _, _, m in kernel.iopub_log if m["content"].get("comm_id") == comm_id]
        if any(m["msg_type"] == "comm_close" for m in mine):
            return [m["content"]["data"] for m in mine if m["msg_type"] == "comm_msg"], True
        time.sleep(0.01)
    return [], False


def test_without_the_extension_the_comm_is_closed_at_once(server):
    kernel = Kernel(env=server.env())
    try:
        assert ask(kernel, {"action": "stop"}) == ([], True)
    finally:
        kernel.shutdown()


def test_stop_cancels_a_running_reply_and_answers_how_many(server):
    with loaded_kernel(server.env()) as kernel:
        kernel.run("%agent create talker")
        assert ask(kernel, {"action": "stop"}) == ([{"stopped": 0}], True)
        assert ask(kernel, {"action": "dance"}) == ([{"error": "unknown action 'dance'"}], True)

        server.enqueue(Reply.text("word " * 100, chunks=100, delay=0.1))  # 10 s unless stopped
        started = time.monotonic()
        execution = kernel.execute("%%chat talker\nTalk slowly.", wait=False)
        while not server.requests and time.monotonic() - started < 10:
            time.sleep(0.02)
        time.sleep(0.3)  # a few chunks in: the cell is awaiting the reply
        assert ask(kernel, {"action": "stop"}) == ([{"stopped": 1}], True), "handled while the cell awaits"
        kernel.wait(execution, timeout=10)
        assert time.monotonic() - started < 8, "the reply ended early"
        assert ask(kernel, {"action": "stop"}) == ([{"stopped": 0}], True)


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TRANSCRIPT_MIME = "application/vnd.agy.transcript+json"


def reply_outputs(execution, since: int = 0, timeout: float = 5.0) -> list[dict]:
    """The display / update messages of `execution` from message number `since` on (waits for the first)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in list(execution.messages)[since:] if m["msg_type"] in ("display_data", "update_display_data")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def test_reattach_sends_a_reply_again_into_its_cell_while_it_runs_and_after(server):
    """What a reloaded page asks for (labextension/lab/reattach.ts): each output again, in the reply's own cell."""
    with loaded_kernel(server.env()) as kernel:
        kernel.run("%agent create talker")
        assert ask(kernel, {"action": "reattach"}) == ([{"reattached": 0}], True)
        server.enqueue(Reply.text("word " * 60, chunks=60, delay=0.05))  # 3 s
        execution = kernel.execute("%%chat talker\nTalk.", wait=False, metadata={"cellId": "cell-7"})
        [shown] = reply_outputs(execution)
        tag = shown["content"]["metadata"]["agy_reply"]
        assert (tag["cell"], tag["part"], tag["final"]) == ("cell-7", 0, False)

        since = len(execution.messages)
        assert ask(kernel, {"action": "reattach"}) == ([{"reattached": 1}], True), "handled while the cell awaits"
        [again] = reply_outputs(execution, since)  # sent in the cell's context: it belongs to the execution
        assert again["msg_type"] == "update_display_data"
        assert again["content"]["data"][WIDGET_MIME] == shown["content"]["data"][WIDGET_MIME]
        assert again["content"]["metadata"] == shown["content"]["metadata"]
        assert again["content"]["transient"] == shown["content"]["transient"]

        kernel.wait(execution, timeout=20)
        final = reply_outputs(execution)[-1]["content"]
        assert final["metadata"]["agy_reply"] == {**tag, "final": True}
        assert TRANSCRIPT_MIME in final["data"]

        since = len(execution.messages)
        assert ask(kernel, {"action": "reattach"}) == ([{"reattached": 1}], True), "kept a while after it ended"
        [late] = reply_outputs(execution, since)
        assert late["content"]["data"] == final["data"] and late["content"]["metadata"] == final["metadata"]

        second = kernel.execute("%%chat talker\nAgain.", metadata={"cellId": "cell-8"})
        later = reply_outputs(second)[-1]["content"]["metadata"]["agy_reply"]
        assert later["reply"] > tag["reply"] and later["run"] == tag["run"] and later["cell"] == "cell-8"


def test_replies_that_ended_long_ago_are_forgotten_without_any_reattach(monkeypatch):
    # a session that never reloads must not keep every reply it ever showed
    from agy_jupyter.notebook import reattach

    now = [1000.0]
    monkeypatch.setattr(reattach, "clock", lambda: now[0])
    replies = reattach.ShownReplies()
    first = replies.add(object())
    replies.end(first)
    running = replies.add(object())
    assert len(replies) == 2
    now[0] += reattach.KEEP_ENDED + 1
    later = replies.add(object())  # adding is enough to drop what ended too long ago
    assert len(replies) == 2 and later > running > first
    replies.end(running)
    replies.end(later)
    now[0] += reattach.KEEP_ENDED + 1
    replies.add(object())
    assert len(replies) == 1
