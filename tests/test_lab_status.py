"""The status bar's comm (agy_jupyter/notebook/lab_status.py) in a real kernel: opened at %load_ext,
updated when a reply starts and ends, an approval waits and settles, and a turn's usage is added.

The browser side (labextension/lab/status.ts) is tested in tests/browser/test_status_bar.py.
"""
from __future__ import annotations

import time

import pytest

from agy_jupyter.notebook.lab_status import TARGET
from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import Kernel, loaded_kernel

TOOL = ("from agy_jupyter.agent.tools import as_tool\n"
        "import dataclasses\n"
        "def touch(path: str) -> str:\n"
        '    """Create a file."""\n'
        "    return 'ok'\n"
        "touch_tool = dataclasses.replace(as_tool(touch), effect='write')")


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


def status_comms(kernel: Kernel) -> list[dict]:
    return [m for m in kernel.comm_opens() if m["content"].get("target_name") == TARGET]


def states(kernel: Kernel, comm_id: str) -> list[dict]:
    return [m["content"]["data"] for _, _, m in kernel.iopub_log
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id]


def wait_state(kernel: Kernel, comm_id: str, test, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in states(kernel, comm_id):
            if test(state):
                return state
        time.sleep(0.02)
    raise AssertionError(f"no state matched; sent: {states(kernel, comm_id)}")


def test_the_comm_opens_at_load_ext_with_an_empty_state(server):
    with loaded_kernel(server.env()) as kernel:
        opened = status_comms(kernel)
        assert len(opened) == 1
        assert opened[0]["content"]["data"] == {"streaming": 0, "approvals": [], "tokens": 0, "cost": None}
        comm_id = opened[0]["content"]["comm_id"]
        kernel._send_shell(kernel.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"action": "state"}}))
        assert wait_state(kernel, comm_id, lambda s: True) == opened[0]["content"]["data"], "a reloaded page asks"
        kernel.run("%reload_ext agy_jupyter")  # loaded again: a new comm, the old one closed
        assert len(status_comms(kernel)) == 2
        closed = [m["content"]["comm_id"] for _, _, m in kernel.iopub_log if m["msg_type"] == "comm_close"]
        assert opened[0]["content"]["comm_id"] in closed


def test_streaming_approvals_and_usage_are_counted(server):
    with loaded_kernel(server.env()) as kernel:
        comm_id = status_comms(kernel)[0]["content"]["comm_id"]
        kernel.run(TOOL + "\n%agent create talker --model gemini-2.5-flash --tools touch_tool")

        server.enqueue(Reply.text("word " * 40, chunks=40, delay=0.05))  # 2 s of streaming
        kernel.run("%%chat talker\nTalk.")
        running = wait_state(kernel, comm_id, lambda s: s["streaming"] == 1)
        assert running["approvals"] == []
        done = wait_state(kernel, comm_id, lambda s: s["streaming"] == 0 and s["tokens"] > 0)
        assert done["cost"] is not None and done["cost"] > 0
        assert len(states(kernel, comm_id)) <= 4, "a state per change, not per chunk"

        server.enqueue(Reply.function_call("touch", {"path": "a.txt"}, id="t1"), Reply.text("Touched."))
        execution = kernel.execute("%%chat talker\nTouch a.txt.", wait=False)
        waiting = wait_state(kernel, comm_id, lambda s: s["approvals"])
        assert waiting["streaming"] == 1
        assert waiting["approvals"] == [{"agent": "talker", "tool": "touch", "cell": None}]  # no cellId here
        view = kernel.frontend.wait_for("ApprovalView")
        kernel.send_comm(view, {"type": "decision", "approved": True})
        kernel.wait(execution, timeout=20)
        final = wait_state(kernel, comm_id, lambda s: s["streaming"] == 0 and s["tokens"] > done["tokens"])
        assert final["approvals"] == []
