"""The status-bar item in a real JupyterLab (labextension/lab/status.ts, fed by agy_jupyter/notebook/lab_status.py):
hidden until %load_ext; it counts a running agent and a waiting approval; clicking the approval count goes to
the cell that asks; after the turn it shows the session's tokens and estimated cost; a kernel restart hides it
and %load_ext brings it back; a reloaded page shows it again. Screenshots go to the test's tmp directory, or to $AGY_SCREENSHOT_DIR."""
from __future__ import annotations

import pytest

from agy_jupyter.testing import Reply

NOTEBOOK = "status_bar.ipynb"
SETUP = ("import dataclasses\n"
         "from agy_jupyter.agent.tools import as_tool\n"
         "def touch(path: str) -> str:\n"
         '    """Create a file."""\n'
         "    return 'touched'\n"
         "touch_tool = dataclasses.replace(as_tool(touch), effect='write')\n"
         "%load_ext agy_jupyter\n"
         "%agent create writer --model gemini-2.5-flash --tools touch_tool")
SELECT_JS = """(index) => { const notebook = window.jupyterapp.shell.currentWidget.content;
    notebook.deselectAll(); notebook.activeCellIndex = index; notebook.mode = 'command'; }"""
ACTIVE_JS = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"
RESTART_JS = "() => window.jupyterapp.shell.currentWidget.sessionContext.restartKernel()"


@pytest.mark.timeout(120)
def test_status_bar_counts_agents_and_approvals_and_goes_to_the_cell(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(Reply.function_call("touch", {"path": "notes.txt"}, id="t1"), Reply.text("Touched it."))
    lab.write_notebook(NOTEBOOK, [SETUP, "%%chat writer\nTouch notes.txt.", "x = 1", "y = 2", "%load_ext agy_jupyter"])
    lab_page.open(NOTEBOOK)
    page = lab_page.page
    assert page.evaluate("() => window.jupyterapp.isPluginActivated('agy-jupyter:status')"), "this build's plugin"
    item = page.locator(".jp-StatusBar-Widget .agy-statusbar")
    assert item.count() == 0 or not item.is_visible(), "nothing to show before %load_ext"

    lab_page.run_cell(0)
    item.wait_for(state="visible", timeout=10_000)
    assert item.inner_text().startswith("Agents: 0 agents streaming")
    assert item.get_attribute("role") == "status"

    lab_page.start_cell(1)
    approvals = item.get_by_role("button", name="1 approval waiting")
    approvals.wait_for(timeout=30_000)
    assert "1 agent streaming" in item.inner_text()
    assert item.get_attribute("aria-label") == "Agents, 1 agent streaming, 1 approval waiting, 0 tokens"
    lab_page.screenshot(tmp_path / "status-bar-waiting.png")

    page.evaluate(SELECT_JS, 3)
    approvals.click()
    page.wait_for_function(f"() => ({ACTIVE_JS})() === 1", timeout=5_000)
    approve = lab_page.cell(1).locator(".agy-approval").get_by_role("button", name="Approve", exact=True)
    assert approve.evaluate("(el) => el === document.activeElement"), "the approval takes the focus"
    lab_page.screenshot(tmp_path / "status-bar-jumped.png")

    page.keyboard.press("Enter")  # Approve, from the keyboard
    lab_page.wait_for_output_text(1, "Touched it.")
    page.wait_for_function("() => /^Agents: 0 agents streaming · [1-9][\\d,]* tokens · (≈\\$[\\d.]+|<\\$0\\.0001) est\\.$/"
                           ".test(document.querySelector('.agy-statusbar').innerText.replace(/\\s+/g, ' ').trim())",
                           timeout=10_000)
    assert approvals.count() == 0 or not item.locator(".agy-statusbar-approvals").is_visible()
    lab_page.screenshot(tmp_path / "status-bar-done.png")

    page.evaluate(RESTART_JS)
    item.wait_for(state="hidden", timeout=30_000)
    lab_page.wait_for_idle()
    lab_page.run_cell(4)
    item.wait_for(state="visible", timeout=10_000)
    assert item.inner_text().replace("\n", " ").startswith("Agents: 0 agents streaming · 0 tokens")

    lab_page.save()  # else the page asks "leave?" (and LabPage dismisses dialogs)
    page.reload()  # a page loaded after %load_ext finds the kernel's open comm
    lab_page.wait_for_notebook()
    item.wait_for(state="visible", timeout=20_000)
    assert item.inner_text().replace("\n", " ").startswith("Agents: 0 agents streaming · 0 tokens")
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []
    lab_page.screenshot(tmp_path / "status-bar-reloaded.png")
