"""Conversations survive a real kernel restart (jupyter_client's restart_kernel), and a kernel killed
with SIGKILL mid-reply keeps everything up to its last finished message."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import FrontEnd, Kernel

NOTEBOOK = "/work/analysis.ipynb"
SETUP = '''
%load_ext agy_jupyter
from agy_jupyter.agent.directory import agents
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''
SHOW_HISTORY = '''
import json
from agy_jupyter.agent.directory import agents
from agy_jupyter.agent.history import contents_for_model, history_is_valid
_history = agents.get("analyst").history()
print(json.dumps({"messages": [[m.kind, m.turn, m.status, m.excluded, m.text] for m in _history],
                  "valid": history_is_valid(contents_for_model(_history))}))
'''


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def kernel(server, tmp_path):
    k = Kernel(env={**server.env(), "JUPYTER_DATA_DIR": str(tmp_path), "JPY_SESSION_NAME": NOTEBOOK,
                    "AGY_CHAT_TIMEOUT_SECS": "30"})
    k.frontend = FrontEnd(k)
    try:
        k.run(SETUP)
        yield k
    finally:
        k.shutdown()


def restart(kernel: Kernel, *, now: bool) -> None:
    """Restart the kernel process as JupyterLab's Restart does, then wait until the new one answers."""
    kernel.km.restart_kernel(now=now)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a request sent before the new kernel listens can be lost: resend
        execution = kernel.execute("1", wait=False)
        if execution.done.wait(3):
            kernel.run(SETUP)
            return
    raise AssertionError("the restarted kernel did not answer")


def plain_outputs(execution) -> str:
    return execution.text() + "".join(o.get("data", {}).get("text/plain", "") for o in execution.cell_outputs())


def history(kernel: Kernel) -> dict:
    return json.loads(kernel.run(SHOW_HISTORY).text())


def test_restore_after_a_kernel_restart_continues_the_conversation(kernel, server):
    kernel.run("%agent create analyst --tools add --policy allow --temperature 0.2")
    server.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id="c1"), Reply.text("It is 5."),
                   Reply.text("Noted: 7."))
    kernel.run("%%chat analyst\nWhat is 2 + 3?")
    kernel.run("%%chat analyst\nRemember the number 7.")
    before = history(kernel)

    restart(kernel, now=False)
    assert "analyst" not in kernel.run("%agent list").text()  # a new process: no agents
    listing = plain_outputs(kernel.run("%agent list --saved"))
    assert f"{NOTEBOOK} (this notebook)" in listing and "analyst" in listing and "6 msgs" in listing
    restored = kernel.run("%agent restore analyst").text()
    assert "Restored 'analyst' (6 messages, 2 turns" in restored and "not found" not in restored
    assert history(kernel) == before
    assert "temperature: 0.2" in kernel.run("%agent info analyst").text()

    server.enqueue(Reply.text("You said 7."))
    kernel.run("%%chat analyst\nWhich number?")
    sent = server.requests[-1].contents
    texts = [p["text"].strip() for c in sent for p in c["parts"] if "text" in p]
    assert texts[0] == "What is 2 + 3?" and "Remember the number 7." in texts and texts[-1] == "Which number?"
    assert any(p.get("functionResponse", {}).get("response") == {"result": 5} for c in sent for p in c["parts"])
    assert [c["role"] for c in sent] == ["user", "model", "user", "model", "user", "model", "user"]

    kernel.run("%agent delete analyst")
    assert "No saved conversations" in plain_outputs(kernel.run("%agent list --saved"))


def test_a_kernel_killed_mid_reply_keeps_everything_up_to_the_last_finished_message(kernel, server):
    kernel.run("%agent create analyst --tools add --policy allow")
    server.enqueue(Reply.text("Noted."))
    kernel.run("%%chat analyst\nRemember 42.")
    server.enqueue(Reply.function_call("add", {"a": 40, "b": 2}, id="c2"),
                   Reply.text("The sum is " + "forty-two " * 200, chunks=100, delay=0.1))  # ~10 s of streaming
    cell = kernel.execute("%%chat analyst\nAdd 40 and 2, at length.", wait=False)
    deadline = time.monotonic() + 30
    while len(server.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # a few chunks of the last reply are out
    assert not cell.done.is_set()
    os.kill(kernel.km.provisioner.pid, signal.SIGKILL)

    restart(kernel, now=True)
    restored = kernel.run("import warnings, agy_jupyter as agy\nwarnings.simplefilter('error')\n"
                          "analyst = agy.Agent.restore('analyst')\nagents.add(analyst)\n"
                          "print([t.name for t in analyst.config.tools], analyst.turn_count())").text()
    assert restored == "['add'] 2\n"  # the Python API; its tool found in the notebook's namespace
    after = history(kernel)
    assert after["valid"]
    assert [m[:4] for m in after["messages"]] == [
        ["prompt", 1, "complete", False], ["reply", 1, "complete", False],
        ["prompt", 2, "complete", False], ["reply", 2, "error", False], ["tool_results", 2, "error", False]]
    assert after["messages"][1][4] == "Noted."  # the reply in flight is the only thing lost

    server.enqueue(Reply.text("Go on."))
    kernel.run("%%chat analyst\nWhere were we?")
    sent = server.requests[-1].contents
    assert [c["role"] for c in sent] == ["user", "model", "user", "model", "user"]
    assert sent[3]["parts"][0]["functionCall"]["name"] == "add"
    assert sent[4]["parts"][0]["functionResponse"]["response"] == {"result": 42}
    assert sent[4]["parts"][-1]["text"].strip() == "Where were we?"


def test_forget_and_the_off_switch_in_a_kernel(kernel, server):
    kernel.run("%agent create analyst")
    kernel.run("%%chat analyst\nhello")
    assert "Forgot 1 saved conversation of 'analyst'" in kernel.run("%agent forget analyst").text()
    kernel.run("%env AGY_PERSIST=0\n%agent create quiet")
    kernel.run("%%chat quiet\nnot saved")
    assert "No saved conversations" in plain_outputs(kernel.run("%agent list --saved"))
    printed = kernel.execute("%agent restore nobody").text()
    assert "UsageError: no saved conversation named 'nobody'" in printed and "Traceback" not in printed
