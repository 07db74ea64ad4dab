"""What a user does with a running reply in a real JupyterLab: watch it stream, Approve, Deny with a reason,
"Always allow" a tool, Stop it from the reply's Stop button, the toolbar's interrupt button and the status bar.

Each test scripts the fake Gemini server and checks the result where it lands: the page for what the user
sees, `fake_gemini.requests` for what went back to the model, the kernel (a later cell) for what ran.
Screenshots go to the test's tmp directory, or to $AGY_SCREENSHOT_DIR.
"""
from __future__ import annotations

import time

import pytest

from agy_jupyter.testing import Reply

TOOLS = ("import dataclasses\n"
         "from agy_jupyter.agent.tools import as_tool\n"
         "ran = []\n"
         "def touch(path: str) -> str:\n"
         '    """Create a file."""\n'
         "    ran.append(('touch', path))\n"
         "    return 'touched ' + path\n"
         "def erase(path: str) -> str:\n"
         '    """Delete a file."""\n'
         "    ran.append(('erase', path))\n"
         "    return 'erased ' + path\n"
         "touch_tool, erase_tool = (dataclasses.replace(as_tool(f), effect='write') for f in (touch, erase))\n"
         "%load_ext agy_jupyter\n"
         "%agent create writer --tools touch_tool,erase_tool")
STREAM_TEXT_JS = """(index) => {
    const cell = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')[index];
    const body = cell && cell.querySelector('.agy-stream .agy-body');
    return body ? body.innerText : null;
}"""
SENTENCES = " ".join(f"Sentence number {i} of the scripted reply." for i in range(1, 25))


def start(lab_page, index: int) -> str:
    """Run cell `index` without waiting (it waits for clicks); its prompt before, for wait_for_cells."""
    before = lab_page.prompts()[index]
    lab_page.start_cell(index)
    return before


@pytest.mark.timeout(60)
def test_text_appears_progressively_and_ends_as_scripted(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(Reply.text(SENTENCES, chunks=40, delay=0.05))  # 2 s of chunks
    lab.write_notebook("progressive.ipynb", ["%load_ext agy_jupyter\n%agent create talker", "%%chat\nTalk."])
    lab_page.open("progressive.ipynb")
    lab_page.run_cell(0)
    before = start(lab_page, 1)
    snapshots: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = lab_page.page.evaluate(STREAM_TEXT_JS, 1)
        if text and (not snapshots or text != snapshots[-1]):
            snapshots.append(text)
            if len(snapshots) == 3:
                lab_page.screenshot(tmp_path / "reply-streaming.png")
        if snapshots and "*" not in lab_page.prompts()[1]:  # the cell finished: the static copy shows the end
            break
        lab_page.page.wait_for_timeout(30)
    growing = [s for s in snapshots if s.strip()]
    assert len(growing) >= 3, snapshots
    assert all(len(a) < len(b) and SENTENCES.startswith(a.strip()) for a, b in zip(growing, growing[1:])), growing
    lab_page.wait_for_cells(range(1, 2), {1: before}, 30)
    final = lab_page.cell(1).locator(".jp-OutputArea .agy-text").first.inner_text().strip()
    assert final == SENTENCES
    lab_page.screenshot(tmp_path / "reply-done.png")


@pytest.mark.timeout(60)
def test_deny_with_a_reason_sends_the_reason_to_the_model(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(Reply.function_call("erase", {"path": "data.csv"}, id="d1"), Reply.text("Not erased, fine."))
    lab.write_notebook("deny.ipynb", [TOOLS, "%%chat\nErase data.csv.", "print(ran)"])
    lab_page.open("deny.ipynb")
    lab_page.run_cell(0)
    before = start(lab_page, 1)
    approval = lab_page.cell(1).locator(".agy-approval[data-state=pending]")
    approval.get_by_role("button", name="Deny", exact=True).wait_for(timeout=30_000)
    approval.get_by_label("Reason").fill("keep the data, it is the only copy")
    lab_page.screenshot(tmp_path / "deny-with-reason.png")
    approval.get_by_role("button", name="Deny", exact=True).click()
    lab_page.wait_for_cells(range(1, 2), {1: before}, 30)
    lab_page.wait_for_output_text(1, "Not erased, fine.")
    assert "keep the data, it is the only copy" in str(fake_gemini.requests[1].function_response("d1"))
    lab_page.run_cell(2)
    assert lab_page.outputs_text(2).strip() == "[]", "the denied call never ran"


@pytest.mark.timeout(60)
def test_always_allow_skips_the_next_approval_for_that_tool_only(lab, lab_page, fake_gemini):
    fake_gemini.enqueue(Reply.function_call("touch", {"path": "a.txt"}, id="a1"),
                        Reply.function_call("touch", {"path": "b.txt"}, id="a2"),  # other arguments: allowed too
                        Reply.function_call("erase", {"path": "a.txt"}, id="a3"),  # another tool: asks
                        Reply.text("All done."))
    lab.write_notebook("always.ipynb", [TOOLS, "%%chat\nTouch two files, erase one.", "print(ran)"])
    lab_page.open("always.ipynb")
    lab_page.run_cell(0)
    before = start(lab_page, 1)
    cell = lab_page.cell(1)
    first = cell.locator(".agy-approval").nth(0)
    first.get_by_role("button", name="Approve", exact=True).wait_for(timeout=30_000)
    assert "writer wants to call touch" in " ".join(first.inner_text().split())
    first.get_by_role("checkbox").check()
    first.get_by_role("radio", name="any arguments").check()
    first.get_by_role("button", name="Approve", exact=True).click()

    second = cell.locator(".agy-approval").nth(1)
    second.get_by_role("button", name="Approve", exact=True).wait_for(timeout=30_000)
    assert "writer wants to call erase" in " ".join(second.inner_text().split())
    assert cell.locator(".agy-approval").count() == 2, "the second touch did not ask"
    second.get_by_role("button", name="Approve", exact=True).click()
    lab_page.wait_for_cells(range(1, 2), {1: before}, 30)
    lab_page.wait_for_output_text(1, "All done.")
    lab_page.run_cell(2)
    assert lab_page.outputs_text(2).strip() == "[('touch', 'a.txt'), ('touch', 'b.txt'), ('erase', 'a.txt')]"
    assert fake_gemini.requests[2].function_response("a2") == {"result": "touched b.txt"}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["reply", "toolbar", "status bar"])
def test_stop_ends_the_turn_and_the_next_chat_works(lab, lab_page, fake_gemini, tmp_path, how):
    fake_gemini.enqueue(Reply.text("word " * 300, chunks=300, delay=0.1),  # 30 s unless stopped
                        Reply.text("Still here."))
    name = f"stop_{how.replace(' ', '_')}.ipynb"
    lab.write_notebook(name, ["%load_ext agy_jupyter\n%agent create talker", "%%chat\nTalk slowly.",
                              "%%chat\nAre you there?"])
    lab_page.open(name)
    lab_page.run_cell(0)
    before = start(lab_page, 1)
    cell = lab_page.cell(1)
    cell.locator(".agy-stream .agy-body").get_by_text("word word word").wait_for(timeout=30_000)
    started = time.monotonic()
    if how == "reply":
        cell.locator(".agy-stream").get_by_role("button", name="Stop", exact=True).click()
    elif how == "toolbar":
        lab_page.page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').click()
    else:
        lab_page.page.locator(".agy-statusbar").get_by_role("button", name="Stop agents").click()
    lab_page.wait_for_cells(range(1, 2), {1: before}, 20)
    assert time.monotonic() - started < 10, "the turn ended when asked, not when the reply did"
    text = lab_page.outputs_text(1)
    assert text.count("word") < 300
    lab_page.screenshot(tmp_path / f"stopped-from-{how.replace(' ', '-')}.png")
    lab_page.run_cell(2)
    lab_page.wait_for_output_text(2, "Still here.")
