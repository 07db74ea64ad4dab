"""Gemini's server tools in a real kernel: `%agent create --gemini-tools`, the live widget's ops and the
static copy of a reply with a code run and cited sources (front-end messages sent as a browser would)."""
from __future__ import annotations

import json

import pytest

from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME
from agy_jupyter.testing import Chunk, FakeGemini, Reply
from agy_jupyter.testing.kernel import loaded_kernel

SOURCE = ("Gauss <i>sum</i>", "https://example.org/gauss?a=1&b=2")


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server):
    with loaded_kernel(server.env()) as k:
        yield k


def stream_ops(kernel, execution) -> list:
    """Every op the cell's StreamView received, in order."""
    for _, _, msg in kernel.iopub_log:
        if (msg["msg_type"] == "comm_open" and msg["parent_header"].get("msg_id") == execution.msg_id
                and str(msg["content"]["data"]["state"].get("_anywidget_id", "")).endswith("StreamView")):
            return [op for content in kernel.custom_messages(msg["content"]["comm_id"]) for op in content["ops"]]
    raise AssertionError("the cell opened no StreamView")


def test_a_code_run_and_citations_reach_the_widget_and_the_static_copy(kernel, server):
    server.reset()
    assert "Created agent 'g'" in kernel.run("%agent create g --gemini-tools search,code").text()
    grounded = Reply.grounded("The sum is 45.", [SOURCE]).chunks[-1]
    server.enqueue(Reply(chunks=[Chunk.code("print(sum(range(10)))"), Chunk.code_result("45\n"), grounded]))
    execution = kernel.run("%%chat g\nSum 0..9 and cite it")
    assert server.requests[0].tools == [{"googleSearch": {}}, {"codeExecution": {}}]

    kinds = [op[0] for op in stream_ops(kernel, execution)]
    assert {"code", "code_result", "citations"} <= set(kinds)
    assert kinds.index("code") < kinds.index("code_result") < kinds.index("text") < kinds.index("citations")

    static = [m for m in execution.messages if m["msg_type"] == "update_display_data"][-1]["content"]["data"]
    html = static["text/html"]
    assert "Code run by Gemini" in html and '<pre class="agy-output">45\n</pre>' in html
    assert '<a href="https://example.org/gauss?a=1&amp;b=2" rel="noopener noreferrer nofollow">' \
           'Gauss &lt;i&gt;sum&lt;/i&gt;</a>' in html
    assert [b["type"] for b in static[TRANSCRIPT_MIME]["blocks"]] == ["code_execution", "text", "citations"]


def test_an_unknown_gemini_tool_is_one_clear_line(kernel):
    execution = kernel.execute("%agent create bad --gemini-tools search,bing")
    printed = execution.text() + json.dumps(execution.errors())
    assert "unknown Gemini tool(s) bing; choose from search, url, code" in printed and "Traceback" not in printed
