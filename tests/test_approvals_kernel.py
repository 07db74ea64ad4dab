"""The ApprovalView's "decision" comm message in a real kernel: "always" never turns a Deny into an allow.

A FrontEnd answers over comm the way the widget does when Deny is clicked with "always" ticked.
"""
from __future__ import annotations

import pytest

from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import FrontEnd, Kernel

TOOL_CODE = '''
tool_runs = []
def add(a: int, b: int) -> int:
    """Add two integers."""
    tool_runs.append((a, b))
    return a + b
'''


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server):
    k = Kernel(env={**server.env(), "AGY_CHAT_TIMEOUT_SECS": "30"})
    k.frontend = FrontEnd(k)
    # generous: on a loaded machine a late "rendered" message would let the approval be decided by policy
    k.run("%load_ext agy_jupyter\n%config AgyMagics.render_grace = 15.0")
    k.run(TOOL_CODE)
    yield k
    k.shutdown()


def answer_next_approval(kernel, before: int, decision: dict) -> None:
    comm = kernel.frontend.wait_for("ApprovalView", count=before + 1, timeout=30)
    kernel.send_comm(comm, {"type": "decision", "reason": "", **decision})


def test_deny_with_always_over_comm_denies_and_the_next_call_asks_again(kernel, server):
    server.reset()
    kernel.run("%agent create denier --tools add --policy ask")
    server.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("denied once"),
                   Reply.function_call("add", {"a": 2, "b": 2}, id="c2"), Reply.text("denied twice"))
    before = len(kernel.frontend.opened["ApprovalView"])
    first = kernel.execute("%%chat denier\n1+1", wait=False)
    answer_next_approval(kernel, before, {"approved": False, "always": True, "reason": "no adding"})
    kernel.wait(first)
    second = kernel.execute("%%chat denier\n2+2", wait=False)
    # the second call must be asked about again: a new view opens, and we deny it too
    answer_next_approval(kernel, before + 1, {"approved": False, "always": False})
    kernel.wait(second)
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 2
    assert "no adding" in server.requests[1].function_response("c1")["error"]
    assert "denied" in server.requests[3].function_response("c2")["error"]
    assert kernel.run("print(tool_runs)").text().strip() == "[]"
