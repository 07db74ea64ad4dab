"""Jupyter Notebook 7 smoke test: the stream and approval widgets render and work there too, with the same cells.

The same server serves Notebook 7's pages (/notebooks/...) when the `notebook` package is installed (the test
extra has it); the page is Notebook 7's own application, not JupyterLab's. One run covers what a user does:
load the extension, create an agent, run a `%%chat` cell whose text streams in, Approve a tool call, and
read the answer that follows. The screenshots go to the test's tmp directory, or to $AGY_SCREENSHOT_DIR.
"""
from __future__ import annotations

import re
import time

import pytest

from agy_jupyter.testing import Chunk, Reply

NOTEBOOK = "notebook7.ipynb"
SETUP = ("import dataclasses\n"
         "from agy_jupyter.agent.tools import as_tool\n"
         "ran = []\n"
         "def touch(path: str) -> str:\n"
         '    """Create a file."""\n'
         "    ran.append(path)\n"
         "    return 'touched ' + path\n"
         "touch_tool = dataclasses.replace(as_tool(touch), effect='write')\n"
         "%load_ext agy_jupyter\n"
         "%agent create writer --tools touch_tool")
LEAD_IN = " ".join(f"Step {i} of the plan is written out here." for i in range(1, 21))
ANSWER = "The file notes.txt is there now."
STREAM_TEXT_JS = """() => {
    const body = document.querySelector('.jp-Notebook .jp-Cell:nth-child(2) .agy-stream .agy-body');
    return body ? body.innerText : null;
}"""
KERNEL_IDLE_JS = """() => {
    const panel = window.jupyterapp?.shell?.currentWidget;
    return panel?.sessionContext?.session?.kernel?.status === 'idle';
}"""


def is_notebook7(page) -> bool:
    return page.evaluate("() => window.jupyterapp?.name ?? ''") == "Jupyter Notebook"


@pytest.mark.timeout(120)
def test_stream_and_approval_work_in_notebook7(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(
        Reply(chunks=[Chunk.text(part) for part in re.findall(r"[^.]+\.\s*", LEAD_IN)] + [  # streams for ~2 s, then asks
            Chunk.function_call("touch", {"path": "notes.txt"}, id="t1")], delay=0.1),
        Reply.text(ANSWER))
    lab.write_notebook(NOTEBOOK, [SETUP, "%%chat writer\nMake notes.", "print(ran)"])
    page = lab_page.page
    page.goto(lab.notebook7_url(NOTEBOOK), timeout=90_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(KERNEL_IDLE_JS, timeout=90_000)
    assert is_notebook7(page), "the page is Notebook 7's application, not JupyterLab's"
    assert page.locator("#jp-main-statusbar").count() == 0  # (JupyterLab's status bar is not there)
    assert page.evaluate("() => window.jupyterapp.isPluginActivated('agy-jupyter:commands')"), \
        "Notebook 7 loaded agy_jupyter's JupyterLab extension"

    lab_page.run_cell(0)
    assert "Error" not in lab_page.outputs_text(0), lab_page.outputs_text(0)
    before = {1: lab_page.prompts()[1]}
    lab_page.start_cell(1)

    snapshots: list[str] = []
    cell = lab_page.cell(1)
    approve = cell.locator(".agy-approval[data-state=pending]").get_by_role("button", name="Approve", exact=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not approve.count():
        text = page.evaluate(STREAM_TEXT_JS)
        if text and text.strip() and (not snapshots or text != snapshots[-1]):
            snapshots.append(text)
        page.wait_for_timeout(30)
    assert len(snapshots) >= 3, f"the text did not stream in: {snapshots}"
    assert all(len(a) < len(b) for a, b in zip(snapshots, snapshots[1:])), snapshots
    assert LEAD_IN.startswith(snapshots[0].strip()[:20])

    approve.wait_for(timeout=30_000)
    assert "writer wants to call touch" in " ".join(cell.locator(".agy-approval").first.inner_text().split())
    lab_page.screenshot(tmp_path / "notebook7-approval.png")
    approve.click()
    lab_page.wait_for_cells(range(1, 2), before, 30)
    lab_page.wait_for_output_text(1, ANSWER)
    text = lab_page.outputs_text(1)
    assert "Step 20 of the plan" in text and "Tool call touch ok" in text, text
    assert fake_gemini.requests[1].function_response("t1") == {"result": "touched notes.txt"}

    lab_page.run_cell(2)
    assert lab_page.outputs_text(2).strip() == "['notes.txt']", "Approve ran the tool in the kernel"
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []
    lab_page.screenshot(tmp_path / "notebook7-done.png")
