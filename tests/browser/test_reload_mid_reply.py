"""Reloading the page while a reply streams does not lose the reply.

The kernel keeps running the reply; the reloaded page re-attaches to the same kernel session. The reply's
outputs name their cell (metadata ``agy_reply``), so the page puts what arrives for a cell it did not
run itself (another front-end session ran it) into that cell: the live widget again, then the static copy
when the reply ends. The saved notebook holds the static copy.
"""
from __future__ import annotations

import json
import time

import pytest

from agy_jupyter.testing import Reply

NOTEBOOK = "reload.ipynb"
SENTENCES = " ".join(f"Sentence number {i} of the scripted reply." for i in range(1, 81))
TRANSCRIPT = "application/vnd.agy.transcript+json"


def reload_confirming_leave(lab_page) -> None:
    """Reload the page; the user confirms JupyterLab's "leave the page?" (the notebook has unsaved outputs)."""
    def leave(dialog) -> None:
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            lab_page._dismiss(dialog)  # recorded: model output must not cause dialogs

    lab_page.page.remove_listener("dialog", lab_page._dismiss)
    lab_page.page.on("dialog", leave)
    try:
        lab_page.page.reload()
    finally:
        lab_page.page.remove_listener("dialog", leave)
        lab_page.page.on("dialog", lab_page._dismiss)


@pytest.mark.timeout(90)
def test_reload_mid_reply_keeps_the_reply(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(Reply.text(SENTENCES, chunks=150, delay=0.1))  # 15 s: time for a slow reload
    lab.write_notebook(NOTEBOOK, ["%load_ext agy_jupyter\n%agent create talker", "%%chat\nTalk slowly."])
    lab_page.open(NOTEBOOK)
    lab_page.run_cell(0)
    lab_page.start_cell(1)
    cell = lab_page.cell(1)
    cell.locator(".agy-stream .agy-body").get_by_text("Sentence number 3 ").wait_for(timeout=30_000)
    reloaded_at = time.monotonic()

    reload_confirming_leave(lab_page)
    lab_page.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=60_000)
    live = cell.locator(".agy-stream .agy-body")
    live.get_by_text("Sentence number 1 ").wait_for(timeout=30_000)  # the widget is back, with the text so far
    assert cell.locator(".agy-transcript-output").count() == 0, "the reply was still running after the reload"
    lab_page.screenshot(tmp_path / "reloaded-live.png")
    first = live.inner_text()
    live.get_by_text("Sentence number 60 ").wait_for(timeout=30_000)  # ... and goes on streaming
    assert len(live.inner_text()) > len(first)

    static = cell.locator(".jp-OutputArea .agy-transcript-output")
    static.wait_for(timeout=30_000)  # the reply ended: its static copy replaced the widget
    lab_page.wait_for_idle()
    assert " ".join(static.locator(".agy-text").first.inner_text().split()) == SENTENCES
    assert cell.locator(".jp-OutputArea-output").count() == 1 and cell.locator(".widget-vbox").count() == 0
    assert time.monotonic() - reloaded_at < 45
    lab_page.screenshot(tmp_path / "reloaded-done.png")

    lab_page.save()
    outputs = lab.read_notebook(NOTEBOOK).cells[1].outputs
    assert len(outputs) == 1 and outputs[0].output_type == "display_data", outputs
    transcript = outputs[0].data[TRANSCRIPT]
    transcript = json.loads(transcript) if isinstance(transcript, str) else transcript
    assert transcript["status"] == "done" and transcript["blocks"] == [{"type": "text", "chars": len(SENTENCES)}]
    assert "Sentence number 1 of" in outputs[0].data["text/html"]
    assert "Sentence number 80 of the scripted reply." in outputs[0].data["text/html"]
    assert outputs[0].metadata["agy_reply"]["final"] is True
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []
