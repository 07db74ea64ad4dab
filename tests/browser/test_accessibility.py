"""Accessibility of the widgets where the user consents to code running, in a real JupyterLab and Chromium.

- Keyboard only: Tab goes Approve -> Deny -> Reason -> "always"; Enter on Approve runs the tool; Enter in
  Reason denies with that reason. A card takes the focus when it appears, unless the user is typing in an
  editor (then the focus and the typing stay there); when the reply ends the focus is back on the cell.
- Screen readers: the reply's status changes (writing, awaiting approval, done, error) are read out through
  the page's polite live region (#agy-announcer), once per change.
- axe-core (bundled by axe-playwright-python) finds no serious or critical violation in our widgets: the
  live stream, a pending approval card and the usage view, and a saved notebook drawn by the transcript
  renderer.

The axe filter: axe runs on the whole document (rules about ids, ARIA references and the like need the
page), and a violation counts only for its nodes inside our DOM (`.agy-widget`, the announcer). JupyterLab's
own violations are not ours; measured on this page (JupyterLab 4.6, axe 4.12): aria-allowed-attr on the
debugger button, aria-required-children on the notebook's windowed viewport, aria-input-field-name on
CodeMirror's editors.

The tests share one page and kernel (they run in file order, each on its own cells) to keep the suite fast.
Screenshots go to the test's tmp directory, or to $AGY_SCREENSHOT_DIR.
"""
from __future__ import annotations

import pytest

from agy_jupyter.testing import Chunk, Reply
from lab_page import LabPage
from test_reply_flow import TOOLS

NOTEBOOK = "accessibility.ipynb"
KEYBOARD, USAGE, AUTO_FOCUS, FAILING, SCRATCH = 1, 2, 3, 4, 5
CELLS = [TOOLS, "%%chat\nErase data.csv.", "%agent usage", "%%chat\nErase b.csv.", "%%chat\nAgain?", "x = 0"]
SERIOUS = {"serious", "critical"}
OURS = ".agy-widget, #agy-announcer"

# Every text the live region takes, in order (each one is an announcement).
RECORD_ANNOUNCEMENTS_JS = """() => {
    window.__agyHeard = [];
    new MutationObserver((changes) => {
        const region = document.getElementById('agy-announcer');
        if (region && region.textContent && changes.some((c) => region.contains(c.target)))
            window.__agyHeard.push(region.textContent);
    }).observe(document.body, {childList: true, characterData: true, subtree: true});
}"""
# What has the focus, described: "card", "Approve", "Reason", ..., "editor <cell>", or the tag.
ACTIVE_JS = """() => {
    const a = document.activeElement;
    const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
    const cell = cells.findIndex((c) => c.contains(a));
    if (a.closest('.cm-content')) return `editor ${cell}`;
    if (a.classList.contains('agy-approval')) return `card ${cell}`;
    if (a.closest('.agy-approval')) return (a.labels?.[0]?.textContent || a.textContent).trim();
    if (a.classList.contains('jp-Cell')) return `cell ${cell}`;
    return a.tagName.toLowerCase();
}"""
# axe on the whole document; only the nodes inside our DOM are kept (see the module docstring).
AXE_JS = """async (ours) => {
    const results = await axe.run(document, {resultTypes: ['violations'], elementRef: true});
    return results.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        ours: v.nodes.filter((n) => n.element && n.element.closest(ours)).map((n) => n.html.slice(0, 200)),
        theirs: v.nodes.filter((n) => !(n.element && n.element.closest(ours))).length,
    }));
}"""


def axe_violations(lab_page) -> list[dict]:
    """axe's violations on the page, each with the nodes in our widgets (`ours`) and a count of the others."""
    from axe_playwright_python.base import AXE_SCRIPT  # the axe-core it bundles (the test extra)

    if not lab_page.page.evaluate("() => typeof window.axe === 'object'"):
        lab_page.page.evaluate(AXE_SCRIPT)
    return lab_page.page.evaluate(AXE_JS, OURS)


def serious_in_ours(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["ours"] and v["impact"] in SERIOUS]


def active(lab_page) -> str:
    return lab_page.page.evaluate(ACTIVE_JS)


def heard(lab_page) -> list[str]:
    return lab_page.page.evaluate("() => window.__agyHeard.splice(0)")  # and start over


def wait_for_card(lab_page, index: int):
    card = lab_page.cell(index).locator(".agy-approval[data-state=pending]")
    card.get_by_role("button", name="Approve", exact=True).wait_for(timeout=30_000)
    lab_page.page.wait_for_timeout(300)  # the card takes the focus (or not) within a frame or two
    return card


@pytest.fixture(scope="module")
def page(lab, chromium, fake_gemini):
    """One notebook for the whole module: the tools are defined, the live region is being recorded."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    lab_page = LabPage(context, lab)
    lab.write_notebook(NOTEBOOK, CELLS)
    lab_page.open(NOTEBOOK)
    lab_page.run_cell(0)
    lab_page.page.evaluate(RECORD_ANNOUNCEMENTS_JS)
    default = fake_gemini.default
    yield lab_page
    fake_gemini.default = default
    fake_gemini.reset()
    context.close()


@pytest.mark.timeout(120)
def test_keyboard_only_approval_and_typing_is_not_interrupted(page, fake_gemini, tmp_path):
    fake_gemini.reset()
    fake_gemini.enqueue(
        Reply(chunks=[Chunk.text("Let me "), Chunk.text("check that file. "),
                      Chunk.function_call("erase", {"path": "data.csv"}, id="k1")], ttft=1.5, delay=0.3),
        Reply.text("Erased, as asked.", chunks=3, delay=0.3))
    before = page.prompts()[KEYBOARD]
    page.start_cell(KEYBOARD)
    editor = page.cell(SCRATCH).locator(".cm-content")
    editor.click()  # the user types in another cell while the agent works
    page.page.keyboard.press("End")
    page.page.keyboard.type(" + 1")
    card = wait_for_card(page, KEYBOARD)
    assert active(page) == f"editor {SCRATCH}", "the card took the focus from an editor"
    page.page.keyboard.type(" + 2")
    assert editor.inner_text() == "x = 0 + 1 + 2"

    card.get_by_role("button", name="Approve", exact=True).focus()
    order = [active(page)]
    for _ in range(3):
        page.page.keyboard.press("Tab")
        order.append(active(page))
    assert order == ["Approve", "Deny", "Reason", "Always allow erase for this agent"]
    page.screenshot(tmp_path / "a11y-tab-to-always.png")
    page.page.keyboard.press("Shift+Tab")
    page.page.keyboard.press("Shift+Tab")
    page.page.keyboard.press("Shift+Tab")
    assert active(page) == "Approve"
    page.page.keyboard.press("Enter")
    page.wait_for_cells(range(KEYBOARD, KEYBOARD + 1), {KEYBOARD: before}, 60)
    page.wait_for_output_text(KEYBOARD, "Erased, as asked.")
    assert fake_gemini.requests[1].function_response("k1") == {"result": "erased data.csv"}
    assert active(page) == f"cell {KEYBOARD}", "the focus went back to the notebook, not to the page"
    # read out once per change, not per chunk (the text came in 5 chunks)
    assert heard(page) == ["writer: Writing", "writer: Awaiting approval for erase", "writer: Writing", "writer: Done"]


@pytest.mark.timeout(120)
def test_a_new_card_takes_the_focus_and_axe_finds_nothing_serious(page, fake_gemini, tmp_path):
    fake_gemini.reset()
    fake_gemini.enqueue(Reply(chunks=[Chunk.text("I will erase it. "), Chunk.function_call("erase", {"path": "b.csv"}, id="f1")],
                              delay=0.3),
                        Reply.text("Kept it.", chunks=2, delay=0.3))
    page.run_cell(USAGE)
    page.cell(USAGE).locator(".agy-usage table").wait_for(timeout=30_000)
    before = page.prompts()[AUTO_FOCUS]
    page.start_cell(AUTO_FOCUS)  # the notebook in command mode: nobody is typing
    wait_for_card(page, AUTO_FOCUS)
    assert active(page) == f"card {AUTO_FOCUS}"
    page.screenshot(tmp_path / "a11y-card-focused.png")
    page.page.keyboard.press("Tab")
    assert active(page) == "Approve"
    page.screenshot(tmp_path / "a11y-approve-focused.png")

    violations = axe_violations(page)  # a streamed reply (cell 1's static copy, cell 3 live), the card, usage
    print("axe, live views:", [(v["id"], v["impact"], len(v["ours"]), v["theirs"]) for v in violations])
    assert serious_in_ours(violations) == []

    page.page.keyboard.press("Tab")
    page.page.keyboard.press("Tab")
    assert active(page) == "Reason"
    page.page.keyboard.type("keep b.csv")
    page.page.keyboard.press("Enter")  # Enter in Reason: Deny with that reason
    page.wait_for_cells(range(AUTO_FOCUS, AUTO_FOCUS + 1), {AUTO_FOCUS: before}, 60)
    page.wait_for_output_text(AUTO_FOCUS, "Kept it.")
    assert "keep b.csv" in str(fake_gemini.requests[1].function_response("f1"))
    assert heard(page) == ["writer: Writing", "writer: Awaiting approval for erase", "writer: Writing", "writer: Done"]


@pytest.mark.timeout(120)
def test_an_error_is_read_out(page, fake_gemini):
    fake_gemini.reset()
    fake_gemini.enqueue(Reply.error(400, "Request contains an invalid argument.", status="INVALID_ARGUMENT"))
    page.run_cell(FAILING)
    announced = heard(page)
    assert announced and announced[-1].startswith("writer: Error: "), announced
    assert "invalid argument" in announced[-1]


@pytest.mark.timeout(120)
def test_the_transcript_renderer_has_no_serious_violations(page, tmp_path):
    page.save()
    page.close_and_reopen()
    transcripts = page.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .agy-transcript")
    transcripts.nth(2).wait_for(timeout=30_000)
    assert transcripts.count() == 3  # the approved reply, the denied one and the error
    violations = axe_violations(page)
    print("axe, transcripts:", [(v["id"], v["impact"], len(v["ours"]), v["theirs"]) for v in violations])
    assert serious_in_ours(violations) == []
    page.screenshot(tmp_path / "a11y-transcripts.png")
    assert page.foreign_requests == [] and page.dialogs == []
