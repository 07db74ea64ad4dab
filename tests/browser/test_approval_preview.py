"""In a real JupyterLab: the approval shows the highlighted code that will run, and "Always allow, only
these arguments" lets the same call run unasked next time (Approve clicked in Chromium)."""
from __future__ import annotations

import pytest

from agy_jupyter.testing import Reply

NOTEBOOK = "approval_preview.ipynb"
CODE = "import math\nprint(math.pi)"
SETUP = ("import dataclasses\n"
         "from agy_jupyter.agent.tools import as_tool\n"
         "ran = []\n"
         "def run_code(code: str) -> str:\n"
         '    """Run Python code."""\n'
         "    ran.append(code)\n"
         "    return 'ran'\n"
         "run_code_tool = dataclasses.replace(as_tool(run_code), effect='execute', preview=lambda args: "
         "{'kind': 'code', 'text': args['code'], 'language': 'python'})\n"
         "%load_ext agy_jupyter\n"
         "%agent create coder --tools run_code_tool")


@pytest.mark.timeout(300)
def test_approval_shows_highlighted_code_and_always_for_these_arguments(lab, lab_page, fake_gemini):
    fake_gemini.reset()
    fake_gemini.enqueue(Reply.function_call("run_code", {"code": CODE}, id="c1"), Reply.text("First run done."),
                        Reply.function_call("run_code", {"code": CODE}, id="c2"), Reply.text("Second run done."))
    lab.write_notebook(NOTEBOOK, [SETUP, "%%chat coder\nrun it", "%%chat coder\nagain", "print(len(ran))"])
    lab_page.open(NOTEBOOK)
    lab_page.run_cell(0)

    before = {1: lab_page.prompts()[1]}
    lab_page.start_cell(1)
    approval = lab_page.cell(1).locator(".agy-approval")
    approve = approval.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(timeout=60_000)
    assert approval.get_by_role("button", name="Deny", exact=True).count() == 1
    code = approval.locator(".agy-preview code.language-python")
    code.wait_for(timeout=30_000)
    assert code.text_content() == CODE
    # highlighted by the assets' renderer in the page
    approval.locator(".agy-preview .hljs-keyword", has_text="import").wait_for(timeout=30_000)
    approval.locator("input[type=checkbox]").check()
    assert approval.locator("input[type=radio][value=args]").is_checked()
    approve.click()
    lab_page.wait_for_cells(range(1, 2), before, 60)
    lab_page.wait_for_output_text(1, "First run done.")

    lab_page.run_cell(2)  # the same arguments: no approval is shown, the call runs
    lab_page.wait_for_output_text(2, "Second run done.")
    assert lab_page.cell(2).locator(".agy-approval").count() == 0
    lab_page.run_cell(3)
    assert lab_page.outputs_text(3).strip() == "2"
    assert fake_gemini.requests[3].function_response("c2") == {"result": "ran"}
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []
