"""Driving a JupyterLab page with Playwright: open a notebook, run cells, save, close and reopen, screenshot.

A `LabPage` also watches the page for things model output must never cause: every request to a host
other than 127.0.0.1 / localhost is aborted and recorded (`foreign_requests`), and every dialog (alert,
confirm, prompt) is recorded and dismissed (`dialogs`). Tests assert both lists stay empty.

Facts this relies on (measured with JupyterLab 4.6 and Debian's Chromium):
- The server runs with ``--LabApp.expose_app_in_browser``, so ``window.jupyterapp`` reaches the commands.
- A Shift+Enter sent right after a notebook opens can be dropped: `run_cell` presses again if the prompt
  shows neither ``[*]`` nor a new number.
- Outputs of cells run in this session, and of a saved notebook when it is reopened, are trusted:
  JupyterLab renders their HTML and Markdown without sanitizing it.
"""
from __future__ import annotations

import os
import re
import shutil
import time
import urllib.parse
from pathlib import Path
from typing import Any

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
CELL_TIMEOUT = 60.0
PRESS_AGAIN_AFTER = 2.0  # seconds without [*] or a new [N] before Shift+Enter is sent again

_PROMPTS_JS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(
    (c) => (c.querySelector('.jp-InputPrompt')?.textContent ?? '').trim())"""
_START_CELL_JS = """(index) => {
    const notebook = window.jupyterapp.shell.currentWidget.content;
    notebook.deselectAll();
    notebook.activeCellIndex = index;
    window.jupyterapp.commands.execute('notebook:run-cell');  // not awaited: the cell may wait for clicks
}"""
_SELECT_AND_RUN_JS = """async ([first, last]) => {
    const panel = window.jupyterapp.shell.currentWidget;
    const notebook = panel.content;
    notebook.deselectAll();
    notebook.activeCellIndex = first;
    notebook.extendContiguousSelectionTo(last);
    await window.jupyterapp.commands.execute('notebook:run-cell');
}"""


def is_local(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


class LabPage:
    """One Playwright page on a `LabServer`, with the request and dialog guards installed."""

    def __init__(self, context: Any, server: Any):
        self.context = context
        self.server = server
        self.foreign_requests: list[str] = []
        self.dialogs: list[str] = []
        context.route(lambda url: not is_local(url), self._abort_foreign)
        context.route_web_socket(lambda url: not is_local(url), self._close_foreign_socket)
        self.page = context.new_page()
        self.page.on("dialog", self._dismiss)
        self.notebook: str | None = None

    def add_init_script(self, script: str) -> None:
        """JavaScript that runs in every document of the page before its own scripts (call before `open`)."""
        self.context.add_init_script(script)

    # -- guards ---------------------------------------------------------------------------------

    def _abort_foreign(self, route: Any) -> None:
        self.foreign_requests.append(route.request.url)
        route.abort()

    def _close_foreign_socket(self, socket: Any) -> None:
        self.foreign_requests.append(socket.url)
        socket.close()

    def _dismiss(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    # -- notebooks -------------------------------------------------------------------------------

    def open(self, notebook: str, timeout: float = 90.0) -> None:
        """Open `notebook` (a path under the server's root) in a fresh workspace; wait for the idle kernel."""
        self.notebook = notebook
        self.page.goto(self.server.lab_url(notebook), timeout=timeout * 1000)
        self.wait_for_notebook(timeout)

    def wait_for_notebook(self, timeout: float = 90.0) -> None:
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self.wait_for_idle(timeout)

    def wait_for_idle(self, timeout: float = 90.0) -> None:
        """The status bar says the kernel is idle."""
        self.page.wait_for_selector("#jp-main-statusbar >> text=/\\| Idle/", timeout=timeout * 1000)

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)

    def prompts(self) -> list[str]:
        """The input prompt of every cell: '[ ]:', '[*]:' or '[N]:'."""
        return self.page.evaluate(_PROMPTS_JS)

    def run_cell(self, index: int, timeout: float = CELL_TIMEOUT) -> None:
        """Select cell `index`, press Shift+Enter (again if it was dropped) and wait until it has run."""
        before = self.prompts()[index]
        self.cell(index).locator(".jp-InputArea-prompt").click()
        deadline = time.monotonic() + PRESS_AGAIN_AFTER
        self.page.keyboard.press("Shift+Enter")
        while not self._started(index, before):
            if time.monotonic() > deadline:
                self.cell(index).locator(".jp-InputArea-prompt").click()
                self.page.keyboard.press("Shift+Enter")
                deadline = time.monotonic() + PRESS_AGAIN_AFTER
            self.page.wait_for_timeout(50)
        self.wait_for_cells(range(index, index + 1), {index: before}, timeout)

    def start_cell(self, index: int) -> None:
        """Run cell `index` without waiting for it (it waits for Approve / Deny clicks, or is stopped)."""
        self.page.evaluate(_START_CELL_JS, index)

    def _started(self, index: int, before: str) -> bool:
        now = self.prompts()[index]
        return "*" in now or (now != before and re.search(r"\[\d+\]", now) is not None)

    def run_cells(self, first: int, last: int, timeout: float = 300.0) -> None:
        """Run cells first..last (inclusive) as one selection, in order; wait until all of them have run."""
        before = dict(enumerate(self.prompts()))
        self.page.evaluate(_SELECT_AND_RUN_JS, [first, last])
        self.wait_for_cells(range(first, last + 1), before, timeout)

    def wait_for_cells(self, indices: range, before: dict[int, str], timeout: float) -> None:
        """Every cell in `indices` shows a number other than before (so it ran again, and finished)."""
        deadline = time.monotonic() + timeout
        while True:
            prompts = self.prompts()
            pending = [i for i in indices if not re.search(r"\[\d+\]", prompts[i]) or prompts[i] == before.get(i)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"cells {pending[:10]} did not finish within {timeout:.0f} s "
                                   f"(prompts {[prompts[i] for i in pending[:10]]})")
            self.page.wait_for_timeout(100)

    def outputs_text(self, index: int, visible: bool = True) -> str:
        """The text of cell `index`'s outputs: innerText (what is shown) or textContent (all of it)."""
        prop = "innerText" if visible else "textContent"
        return self.cell(index).locator(".jp-OutputArea").evaluate(f"(el) => el.{prop}")

    def wait_for_output_text(self, index: int, text: str, timeout: float = CELL_TIMEOUT) -> None:
        """Wait until cell `index`'s outputs contain `text` (e.g. while a reply streams)."""
        self.cell(index).locator(".jp-OutputArea").get_by_text(text, exact=False).first.wait_for(
            timeout=timeout * 1000)

    def save(self, timeout: float = 30.0) -> None:
        """Ctrl+S, then wait until the notebook's tab is no longer marked as modified."""
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => { const t = document.querySelector('.lm-TabBar-tab.jp-mod-current');"
            " return t && !t.classList.contains('jp-mod-dirty'); }", timeout=timeout * 1000)

    def close_and_reopen(self, timeout: float = 90.0) -> None:
        """Close the notebook's tab and open the saved file again (its outputs come from the file)."""
        assert self.notebook is not None, "open a notebook first"
        self.page.evaluate("() => window.jupyterapp.commands.execute('application:close')")
        self.page.wait_for_selector(".jp-NotebookPanel", state="detached", timeout=timeout * 1000)
        # Returns nothing: the command's result is the notebook widget, whose object graph Playwright may fail
        # to serialize ("object reference chain is too long").
        self.page.evaluate("async (path) => { await window.jupyterapp.commands.execute('docmanager:open', {path}); }",
                           self.notebook)
        self.wait_for_notebook(timeout)

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the page at `path`, copied into $AGY_SCREENSHOT_DIR too when that is set (to look at it)."""
        path = Path(path)
        self.page.screenshot(path=str(path))
        if os.environ.get("AGY_SCREENSHOT_DIR"):
            folder = Path(os.environ["AGY_SCREENSHOT_DIR"])
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, folder / path.name)
        return path

    # -- the page flag ---------------------------------------------------------------------------

    def pwned(self) -> list | None:
        """`window.__agyPwned`: the ids of payloads that executed (None if nothing did)."""
        return self.page.evaluate("() => window.__agyPwned ?? null")

    def reset_pwned(self) -> None:
        self.page.evaluate("() => { delete window.__agyPwned; }")
