"""Headless runs (nbclient, as papermill and CI use it) and kernels where the user applied nest_asyncio."""
from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient

from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME
from agy_jupyter.testing import Chunk, Reply
from agy_jupyter.testing.kernel import FrontEnd, Kernel

SETUP = '''
%load_ext agy_jupyter
%config AgyMagics.render_grace = 0.5
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''


def run_notebook(cells: list[str], timeout: int = 60) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(notebook, timeout=timeout, kernel_name="python3").execute()
    return notebook


def test_nbclient_runs_the_magics_and_denies_ask_tools_without_hanging(fake):
    fake.enqueue(Reply.text("Hello from a headless run", chunks=4, delay=0.01),
                 Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("I was not allowed to add."))
    started = time.monotonic()
    notebook = run_notebook([SETUP, "%agent create helper --tools add", "%%chat -o first\nSay hello",
                             "%%chat helper\nWhat is 1 + 2?", "print(first)"])
    assert time.monotonic() - started < 45
    outputs = [cell.outputs for cell in notebook.cells]
    static = [o for o in outputs[2] if o.get("output_type") == "display_data"][-1]["data"]
    assert static["text/plain"].splitlines()[0] == "Hello from a headless run" and TRANSCRIPT_MIME in static
    assert "<p>Hello from a headless run</p>" in static["text/html"]
    denial = fake.requests[2].function_response("c1")["error"]
    assert "nobody can approve 'add'" in denial and "headless_approval" in denial
    assert outputs[4][0]["text"] == "Hello from a headless run\n"
    # the saved notebook carries the static copy only: no live widget output is left behind
    assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for cell in outputs for o in cell)


def test_headless_allow_setting_lets_ask_tools_run(fake):
    fake.enqueue(Reply.function_call("add", {"a": 20, "b": 22}, id="c1"), Reply.text("42"))
    run_notebook([SETUP, "%config AgyMagics.headless_approval = 'allow'", "%agent create helper --tools add",
                  "%%chat\nWhat is 20 + 22?"])
    assert fake.requests[1].function_response("c1") == {"result": 42}


@pytest.fixture
def nested_kernel(fake):
    kernel = Kernel(env=fake.env())
    kernel.frontend = FrontEnd(kernel)
    yield kernel
    kernel.shutdown()


def test_magics_work_after_the_user_applied_nest_asyncio(nested_kernel, fake):
    nested_kernel.run("import nest_asyncio\nnest_asyncio.apply()")
    nested_kernel.run(SETUP + "\n%agent create n --tools add")
    fake.enqueue(Reply.text("still streaming", chunks=3, delay=0.02))
    execution = nested_kernel.run("%%chat -o r\nhello")
    assert nested_kernel.run("print(r)").text() == "still streaming\n"
    fake.enqueue(Reply.function_call("add", {"a": 1, "b": 1}, id="c1"), Reply.text("2"))
    pending = nested_kernel.execute("%%chat\n1+1", wait=False)
    comm = nested_kernel.frontend.wait_for("ApprovalView")
    nested_kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
    nested_kernel.wait(pending, timeout=30)
    assert pending.reply["content"]["status"] == "ok", pending.errors()
    assert fake.requests[2].function_response("c1") == {"result": 2}
    assert execution.reply["content"]["status"] == "ok"


def test_without_a_front_end_the_stream_degrades_to_coalesced_text(fake):
    kernel = Kernel(env=fake.env())  # nobody answers "rendered": what nbclient and papermill look like
    try:
        kernel.run(SETUP + "\n%config AgyMagics.text_interval = 0.3\n%agent create quiet")
        words = [f"word{i} " for i in range(12)]
        fake.enqueue(Reply(chunks=[Chunk.text(w) for w in words], delay=0.15))
        execution = kernel.run("%%chat\nspeak slowly")
        updates = [m["content"]["data"] for m in execution.messages if m["msg_type"] == "update_display_data"]
        progress, final = updates[:-1], updates[-1]
        assert progress and all(set(u) == {"text/plain"} for u in progress)
        assert any("word" in u["text/plain"] and "quiet: streaming" in u["text/plain"] for u in progress)
        assert len(progress) < len(words)  # coalesced, not one update per chunk
        assert final["text/plain"].startswith("".join(words) + "\n[quiet · ") and TRANSCRIPT_MIME in final
    finally:
        kernel.shutdown()
