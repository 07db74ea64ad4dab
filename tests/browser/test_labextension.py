"""The JupyterLab extension (labextension/lab) in a real JupyterLab: installed and active, the transcript
renderer draws a saved reply like the live widget (and with the extension disabled the text/html copy
stands in), the commands insert the cells they promise, Stop agents
ends a running reply, and magics are highlighted.

The extension must be installed where this JupyterLab looks (`pip install -e .` puts it in the venv's
share/jupyter/labextensions; a checkout can point JUPYTER_PATH at a folder whose labextensions/agy-jupyter
is agy_jupyter/labextension). Screenshots go to the test's tmp directory, or to $AGY_SCREENSHOT_DIR.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from agy_jupyter.agent.events import StatusChanged, TextDelta, ToolCallStarted, ToolFinished
from agy_jupyter.notebook.transcript import Transcript
from agy_jupyter.testing import Chunk, Reply
from lab_page import LabPage

TRANSCRIPT_MIME = "application/vnd.agy.transcript+json"
PLUGINS = ["agy-jupyter:highlighting", "agy-jupyter:commands", "agy-jupyter:transcript-renderer", "agy-jupyter:status"]
SETUP = ("def lookup(city: str) -> dict:\n"
         '    """The weather in a city."""\n'
         "    return {'city': city, 'forecast': 'sunny', 'high_c': 21}\n"
         "%load_ext agy_jupyter\n"
         "%agent create helper --policy allow --tools lookup")
CODE = "def celsius(f):\n    return (f - 32) * 5 / 9"
REPLY_TEXT = ("## Weather report\n\n"
              "Paris will be **sunny** with a high of 21 °C. Details: [docs](https://example.org/docs).\n\n"
              "| city | high |\n|---|---|\n| Paris | 21 |\n\n"
              f"```python\n{CODE}\n```\n\n"
              "A chart: ![forecast chart](https://evil.example/chart.png)\n")
EXECUTE_JS = "([command, args]) => window.jupyterapp.commands.execute(command, args ?? {})"
SELECT_JS = """(index) => { const notebook = window.jupyterapp.shell.currentWidget.content;
    notebook.deselectAll(); notebook.activeCellIndex = index; notebook.mode = 'command'; }"""
SOURCES_JS = """() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells
    .map((cell) => cell.getSource())"""


def execute(lab_page, command: str, args: dict | None = None):
    return lab_page.page.evaluate(EXECUTE_JS, [command, args])


def select(lab_page, index: int) -> None:
    lab_page.page.evaluate(SELECT_JS, index)


def sources(lab_page) -> list[str]:
    return lab_page.page.evaluate(SOURCES_JS)


def test_extension_is_installed_and_active(lab, lab_page):
    listed = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=lab._environment(),
                            capture_output=True, text=True, timeout=60)
    line = next((ln for ln in (listed.stdout + listed.stderr).splitlines() if "agy-jupyter" in ln), "")
    assert "enabled" in line and "OK" in line, listed.stdout + listed.stderr
    lab.write_notebook("active.ipynb", ["1"])
    lab_page.open("active.ipynb")
    active = lab_page.page.evaluate("(ids) => ids.map((id) => window.jupyterapp.isPluginActivated(id))", PLUGINS)
    assert active == [True] * len(PLUGINS), dict(zip(PLUGINS, active))


@pytest.mark.timeout(240)
def test_saved_reply_renders_through_the_transcript_renderer(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(
        Reply(chunks=[Chunk.thought("The user wants the weather; call lookup."),
                      Chunk.function_call("lookup", {"city": "Paris"}, id="call-1")]),
        Reply.text(REPLY_TEXT, chunks=4, delay=0.02))
    lab.write_notebook("renderer.ipynb", [SETUP, "%%chat helper\nWeather in Paris?"])
    lab_page.open("renderer.ipynb")
    lab_page.run_cell(0)
    lab_page.run_cell(1)
    lab_page.wait_for_output_text(1, "Weather report")
    lab_page.save()
    saved = lab.read_notebook("renderer.ipynb").cells[1].outputs
    assert any(TRANSCRIPT_MIME in o.get("data", {}) for o in saved), "the reply left its static copy"
    lab_page.close_and_reopen()

    reply = lab_page.cell(1).locator(".jp-OutputArea-output .agy-transcript")
    reply.wait_for(timeout=30_000)
    assert lab_page.cell(1).locator(".agy-static").count() == 0, "text/html is not what renders"
    assert reply.get_attribute("data-status") == "done"
    assert reply.locator(".agy-header .agy-status").text_content() == "Done", "the status is a word, not a colour"
    assert reply.locator(".agy-header .agy-agent").text_content() == "helper"
    assert reply.locator("h2", has_text="Weather report").count() == 1
    assert reply.locator("strong", has_text="sunny").count() == 1
    assert reply.locator("table td", has_text="Paris").count() == 1
    code = reply.locator(".agy-text pre.agy-code code")
    assert code.text_content().strip() == CODE
    assert code.locator("span.k", has_text="def").count() == 1, "code keeps its highlighting"
    link = reply.locator('a[href="https://example.org/docs"]')
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    assert reply.locator("a.agy-image-link", has_text="forecast chart").count() == 1
    assert reply.locator("img").count() == 0, "a remote image never loads"
    tool = reply.locator(".agy-tool")
    assert tool.count() == 1 and tool.get_attribute("data-status") == "ok"
    assert tool.locator(".agy-tool-name").text_content() == "lookup"
    assert '"forecast": "sunny"' in tool.locator(".agy-tool-result").text_content()
    thoughts = reply.locator("details.agy-thoughts")
    assert "call lookup" in thoughts.text_content() and not thoughts.evaluate("(d) => d.open")
    dot = reply.locator(".agy-header .agy-status").evaluate(
        "(el) => getComputedStyle(el, '::before').backgroundColor")
    assert dot not in ("", "rgba(0, 0, 0, 0)"), "the status has its icon (a CSS dot)"
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []
    reply.scroll_into_view_if_needed()
    shot = lab_page.screenshot(tmp_path / "labext-transcript.png")
    assert shot.stat().st_size > 10_000

    # Insert code from reply, from the cell toolbar: only a cell with a reply has the button
    select(lab_page, 0)
    toolbar = lab_page.cell(0).locator(".jp-cell-toolbar")
    ask = toolbar.locator('[data-command="agy-jupyter:ask-about-cell"]')
    ask.wait_for(timeout=10_000)
    assert ask.get_attribute("aria-label").startswith("Insert a %%chat cell below"), "the button has a name"
    assert not toolbar.locator('[data-command="agy-jupyter:insert-code-from-reply"]').is_visible()
    select(lab_page, 1)
    insert = lab_page.cell(1).locator('.jp-cell-toolbar [data-command="agy-jupyter:insert-code-from-reply"]')
    insert.wait_for(timeout=10_000)
    assert insert.get_attribute("aria-label").startswith("Put the code blocks")
    lab_page.screenshot(tmp_path / "labext-cell-toolbar.png")
    insert.click()
    assert sources(lab_page)[2] == CODE
    assert lab_page.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCell.model.type") == "code"


@pytest.mark.timeout(180)
def test_ask_about_a_failing_cell_and_new_chat_cell(lab, lab_page, tmp_path):
    failing = "values = [1, 2]\nvalues[5]"
    lab.write_notebook("ask.ipynb", [failing])
    lab_page.open("ask.ipynb")
    lab_page.run_cell(0)
    select(lab_page, 0)
    # from the cell's context menu, as a user would
    lab_page.cell(0).locator(".jp-InputArea-prompt").click(button="right")
    item = lab_page.page.get_by_role("menuitem", name="Ask the Agent about This Cell")
    item.wait_for(timeout=10_000)
    lab_page.screenshot(tmp_path / "labext-context-menu.png")
    item.click()
    asked = sources(lab_page)[1]
    assert asked.startswith("%%chat\n")
    assert "```python\n" + failing + "\n```" in asked
    assert "IndexError" in asked and "list index out of range" in asked and "\x1b[" not in asked

    execute(lab_page, "agy-jupyter:new-chat-cell")
    assert sources(lab_page)[2] == "%%chat\n"
    assert lab_page.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.mode") == "edit"


@pytest.mark.timeout(180)
def test_stop_agents_cancels_a_running_reply(lab, lab_page, fake_gemini):
    fake_gemini.enqueue(Reply.text("word " * 200, chunks=200, delay=0.1),  # 20 s unless stopped
                        Reply.text("Next reply works."))
    lab.write_notebook("stop.ipynb", [SETUP, "%%chat helper\nTalk slowly.", "%%chat helper\nAgain?"])
    lab_page.open("stop.ipynb")
    lab_page.run_cell(0)
    before = {1: lab_page.prompts()[1]}
    select(lab_page, 1)
    lab_page.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-cell'); }")  # not awaited
    lab_page.wait_for_output_text(1, "word word")
    stopped = execute(lab_page, "agy-jupyter:stop-agents")
    assert stopped == 1
    lab_page.wait_for_cells(range(1, 2), before, 30)
    assert "Cancelled" in lab_page.outputs_text(1) or "cancelled" in lab_page.outputs_text(1)
    lab_page.run_cell(2)
    lab_page.wait_for_output_text(2, "Next reply works.")
    select(lab_page, 2)
    assert execute(lab_page, "agy-jupyter:stop-agents") == 0, "nothing left running"


@pytest.mark.timeout(120)
def test_magics_are_highlighted(lab, lab_page, tmp_path):
    lab.write_notebook("highlight.ipynb", ["%%chat helper\n# Plan\nSome **bold** words", "%agent list\nx = 1  # note"])
    lab_page.open("highlight.ipynb")
    chat, python = lab_page.cell(0).locator(".cm-content"), lab_page.cell(1).locator(".cm-content")
    chat.locator(".tok-heading", has_text="Plan").first.wait_for(timeout=20_000)
    assert chat.get_attribute("data-language") == "markdown"
    assert chat.locator(".tok-strong", has_text="bold").count() >= 1
    assert chat.locator(".cm-agy-magic").first.text_content() == "%%chat"
    assert chat.locator(".tok-meta", has_text="%%chat").count() >= 1, "the magic line is one node of its own"
    assert python.get_attribute("data-language") != "markdown"
    assert python.locator(".cm-agy-magic").first.text_content() == "%agent"
    assert python.locator(".tok-comment", has_text="# note").count() == 1
    lab_page.screenshot(tmp_path / "labext-highlighting.png")
    # a cell that stops being a %%chat cell goes back to the kernel's language
    lab_page.cell(0).locator(".cm-content").click()
    lab_page.page.keyboard.press("Control+Home")
    lab_page.page.keyboard.press("Delete")
    lab_page.page.wait_for_function(
        "() => document.querySelector('.jp-Cell .cm-content').getAttribute('data-language') !== 'markdown'",
        timeout=10_000)


@pytest.fixture
def extension_disabled(lab):
    """A page_config.json that disables agy-jupyter for the pages opened while it exists (read per page load)."""
    path = Path(lab._environment()["JUPYTER_CONFIG_DIR"]) / "labconfig" / "page_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)

    def disable() -> None:
        path.write_text(json.dumps({"disabledExtensions": {"agy-jupyter": True}}))

    yield disable
    path.unlink(missing_ok=True)


def static_reply_notebook(lab, name: str) -> None:
    """A notebook holding Python's static copy of a finished reply (no kernel needed to show it)."""
    transcript = Transcript(agent="helper", model="gemini-2.5-flash")
    for event in (ToolCallStarted("c1", "lookup", {"city": "Paris"}),
                  ToolFinished("c1", "lookup", "ok", {"forecast": "sunny"}),
                  TextDelta(REPLY_TEXT), StatusChanged("done")):
        transcript.apply(event)
    cell = nbformat.v4.new_code_cell("%%chat helper\nWeather in Paris?")
    cell.outputs.append(nbformat.v4.new_output("display_data", data=transcript.static_bundle()))
    lab.write_notebook(name, [cell])


@pytest.mark.timeout(120)
def test_without_the_extension_the_html_copy_stands_in(lab, lab_page, extension_disabled, tmp_path):
    static_reply_notebook(lab, "fallback.ipynb")
    lab_page.open("fallback.ipynb")
    output = lab_page.cell(0).locator(".jp-OutputArea-output")
    output.locator(".agy-transcript h2", has_text="Weather report").wait_for(timeout=20_000)

    extension_disabled()
    plain = LabPage(lab_page.context, lab)  # a new page (leaving the first one asks "leave this page?")
    plain.open("fallback.ipynb")
    assert not plain.page.evaluate("() => window.jupyterapp.hasPlugin('agy-jupyter:transcript-renderer')")
    output = plain.cell(0).locator(".jp-OutputArea-output")
    output.locator(".agy-static h2", has_text="Weather report").wait_for(timeout=20_000)
    assert output.locator(".agy-transcript").count() == 0
    text = plain.outputs_text(0)
    for words in ("helper", "lookup", "sunny", "def celsius", "forecast chart"):
        assert words in text, f"{words!r} not in the text/html copy:\n{text}"
    assert plain.foreign_requests == [] and plain.dialogs == []
    plain.screenshot(tmp_path / "labext-disabled-fallback.png")
