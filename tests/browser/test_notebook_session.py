"""In a real JupyterLab, the notebook tools end to end: the model lists the variables, inspects a DataFrame,
asks to run code that plots (Approve is clicked: the figure shows in the %%chat cell between what the
reply said before and after it, inline backend, and goes back to the model as an image part), asks to run more code (Deny is clicked: it never runs), answers.

The screenshots (the pending approval, the finished notebook) go to the test's tmp directory, or to
$AGY_SCREENSHOT_DIR when set (to look at them).
"""
from __future__ import annotations

import base64

import pytest

from agy_jupyter.testing import Chunk, Reply

NOTEBOOK = "notebook_session.ipynb"
MEDIA_MODEL = "gemini-3-flash-preview"  # older models refuse images in tool results: theirs are left out
SETUP = ("import pandas as pd\n"
         "df = pd.DataFrame({'month': range(1, 13), 'units': [5, 7, 9, 4, 6, 8, 12, 15, 11, 9, 7, 14]})\n"
         "%load_ext agy_jupyter\n"
         f"%agent create analyst --builtin notebook --model {MEDIA_MODEL}")  # read tools allowed, run_python asks
PLOT = ("import matplotlib.pyplot as plt\n"  # the notebook's own (inline) backend
        "fig, ax = plt.subplots(figsize=(4, 2.5))\n"
        "ax.plot(df.month, df.units, marker='o')\n"
        "ax.set_title('Units per month')\n"
        "print('plotted')\n"
        "df.units.sum()")
DENIED = "denied_ran = True\ndf = df.iloc[:0]"
LEAD_IN = "Let me plot the units per month."
ANSWER = "Units peak in August (15) and total 107."
CHECK = "print(repr(globals().get('denied_ran', 'undefined')), len(df))"


@pytest.mark.timeout(120)
def test_scripted_session_lists_inspects_plots_approved_then_denied(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(Reply.function_call("list_variables", {}, id="c1"),
                        Reply.function_call("inspect_variable", {"name": "df"}, id="c2"),
                        Reply(chunks=[Chunk.text(LEAD_IN), Chunk.function_call("run_python", {"code": PLOT},
                                                                               id="c3")]),
                        Reply.function_call("run_python", {"code": DENIED}, id="c4"),
                        Reply.text(ANSWER))
    lab.write_notebook(NOTEBOOK, [SETUP, "%%chat analyst\nWhat do my sales look like?", CHECK])
    lab_page.open(NOTEBOOK)
    lab_page.run_cell(0)
    assert "Error" not in lab_page.outputs_text(0), lab_page.outputs_text(0)

    before = {1: lab_page.prompts()[1]}
    lab_page.start_cell(1)
    cell = lab_page.cell(1)
    approvals = cell.locator(".agy-approval")
    pending = cell.locator(".agy-approval[data-state=pending]")

    # the first question: run_python with the plotting code (the read tools did not ask)
    approve = pending.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(timeout=30_000)
    assert approvals.count() == 1
    assert "Units per month" in pending.locator(".agy-preview").text_content()
    approve.scroll_into_view_if_needed()
    lab_page.screenshot(tmp_path / "notebook_session_approval.png")
    approve.click()

    # the second question: Deny it
    pending.locator(".agy-preview", has_text="denied_ran").wait_for(timeout=30_000)
    assert approvals.count() == 2
    pending.get_by_role("button", name="Deny", exact=True).click()

    lab_page.wait_for_cells(range(1, 2), before, 60)
    lab_page.wait_for_output_text(1, ANSWER)
    figure = cell.locator('.jp-OutputArea img[src^="data:image/png"]')
    assert figure.count() == 1, "the approved code's figure is shown in the %%chat cell"
    assert figure.first.evaluate("(img) => img.complete && img.naturalWidth > 100")
    text = lab_page.outputs_text(1)
    assert "plotted" in text and "np.int64(107)" in text
    assert "Tool call run_python ok" in text and "Tool call run_python denied" in text
    assert text.count("Tool call") == 4
    outputs = [o.text_content() for o in cell.locator(".jp-OutputArea-output").all()]
    where = {what: next(i for i, o in enumerate(outputs) if what in o) for what in (LEAD_IN, ANSWER)}
    where["plotted"] = outputs.index("plotted\n")  # the code's own stdout (the tool card above quotes it too)
    figure_at = next(i for i, o in enumerate(cell.locator(".jp-OutputArea-output").all())
                     if o.locator('img[src^="data:image/png"]').count())
    assert where[LEAD_IN] < where["plotted"] < figure_at < where[ANSWER], (where, figure_at)

    lab_page.run_cell(2)
    assert lab_page.outputs_text(2).strip() == "'undefined' 12", "the denied code never ran"

    requests = fake_gemini.requests
    assert len(requests) == 5
    assert "df: pandas.DataFrame (shape 12x2)" in requests[1].function_response("c1")["result"]
    assert "12 rows x 2 columns" in requests[2].function_response("c2")["result"]
    plotted = requests[3].function_response_part("c3")
    assert plotted["response"]["result"] == "np.int64(107)" and plotted["response"]["stdout"] == "plotted\n"
    blob = plotted["parts"][0]["inlineData"]
    assert blob["mimeType"] == "image/png" and base64.urlsafe_b64decode(blob["data"]).startswith(b"\x89PNG")
    assert "error" in requests[4].function_response("c4")

    assert lab_page.foreign_requests == [] and lab_page.dialogs == [] and lab_page.pwned() is None
    lab_page.page.set_viewport_size({"width": 1280, "height": 2400})  # the whole notebook in one picture
    lab_page.cell(0).scroll_into_view_if_needed()
    shot = lab_page.screenshot(tmp_path / "notebook_session.png")
    assert shot.stat().st_size > 10_000
