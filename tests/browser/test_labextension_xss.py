"""The transcript renderer runs and fetches nothing: the XSS corpus through it in a real Chromium.

No kernel and no model: the notebook file is written with the outputs already in it, two per payload.
- "python": the static copy Python makes (Transcript.static_bundle) of a reply whose text, thoughts, tool
  name, arguments and result, code run, citation, error and agent name all carry the payload;
- "raw": a hand-made bundle as a hostile notebook file could hold it: the payload unsanitized inside the
  text/html copy's `.agy-text` and thoughts (the renderer takes its prose from there) and in the JSON.
The renderer must be the one drawing them (no `.agy-static`, which is the text/html copy), no payload may
set the page flag, open a dialog, or make a request leave 127.0.0.1, no element that runs or fetches may
be in the outputs, and every payload's marker must be shown. A positive control (the same kind of markup
put into the page unsanitized) proves the page would notice.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat
import pytest

from agy_jupyter.agent.events import (Citations, CodeExecuted, CodeExecutionStarted, StatusChanged, TextDelta,
                                      ThoughtDelta, ToolCallStarted, ToolFinished)
from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME, Transcript
from xss_corpus import EVIL_HOST, PAYLOADS, TEMPLATES

PAGE_CHECKS = (Path(__file__).with_name("page_checks.js")).read_text()
NOTEBOOK = "xss_renderer.ipynb"
SETTLE_MS = 500  # time for late handlers (onerror of a failed load) to fire
PER_CELL = 20  # payloads per cell: 40 outputs, under JupyterLab's 50 before it trims a cell's outputs
CONTROL_JS = "top.__agyPwned=(top.__agyPwned||[]).concat('control')"  # what flag(pid) does, with its own id
CONTROL = f'<img src="https://{EVIL_HOST}/control.png" onerror="{CONTROL_JS}">'


def python_bundle(pid: int, payload: str) -> dict:
    """Python's static copy of a reply that carries the payload everywhere a model can put text."""
    transcript = Transcript(agent=payload[:40], model="gemini-2.5-flash")
    for event in (ThoughtDelta(f"{payload}\n\nAGYT{pid}X"), TextDelta(f"{payload}\n\nAGYM{pid}X\n\n"),
                  ToolCallStarted(f"c{pid}", payload[:60], {"text": payload}),
                  ToolFinished(f"c{pid}", payload[:60], "ok", {"echo": payload}),
                  CodeExecutionStarted(payload, "python", f"x{pid}"),
                  CodeExecuted(payload, "python", "ok", payload, f"x{pid}"),
                  TextDelta(f"after {payload}"),
                  Citations([{"title": payload, "uri": payload}, {"title": "t", "uri": f"https://{EVIL_HOST}/"}],
                            [{"text": payload, "sources": [0]}], [payload]),
                  StatusChanged("done")):
        transcript.apply(event)
    transcript.fail(payload, payload)
    transcript.usage_line = payload
    return transcript.static_bundle()


def raw_bundle(pid: int, payload: str) -> dict:
    """A bundle no sanitizer touched: the payload as markup in the HTML copy and as text in the JSON."""
    body = (f'<details class="agy-thoughts"><summary>Thoughts</summary><div class="agy-md agy-thought-text">'
            f'{payload}AGYS{pid}X</div></details><div class="agy-md agy-text">{payload}</div>')
    # the marker is in the JSON: markup left open (a comment, a <textarea>) may swallow what follows it
    data = {"version": 2, "agent": f"AGYR{pid}X", "model": payload, "status": payload, "thoughts": 1, "text_in": "text/html",
            "blocks": [{"type": "text", "chars": 1},
                       {"type": "tool", "id": None, "name": payload, "args": {"a": payload}, "status": payload,
                        "result": payload},
                       {"type": "citations", "sources": [{"title": payload, "uri": payload}], "supports": [],
                        "queries": []}],
            "error": {"message": payload, "hint": payload}, "usage": payload}
    return {"text/html": f'<div class="agy-static">{body}</div>', "text/plain": html.escape(payload),
            TRANSCRIPT_MIME: data}


def write_notebook(lab) -> dict[int, list[str]]:
    """Cells of PER_CELL payloads (one class each), both bundles of each; returns the markers per cell."""
    cells, markers = [], {}
    for cls in TEMPLATES:
        members = [p for p in PAYLOADS if p.cls == cls]
        for start in range(0, len(members), PER_CELL):
            cell = nbformat.v4.new_code_cell(f"# {cls}")
            for payload in members[start:start + PER_CELL]:
                for bundle in (python_bundle(payload.id, payload.text), raw_bundle(payload.id, payload.text)):
                    cell.outputs.append(nbformat.v4.new_output("display_data", data=bundle))
                markers.setdefault(len(cells), []).extend(f"AGY{kind}{payload.id}X" for kind in "MR")
            cells.append(cell)
    lab.write_notebook(NOTEBOOK, cells)
    return markers


@pytest.fixture
def toc_without_outputs(lab):
    """JupyterLab's table of contents parses every output's text/html (after JupyterLab's own sanitizer, which
    lets remote images through) in a detached element of the page, so a hostile notebook's text/html fetches
    remote images even when another renderer shows the output. Switched off here: what is measured is ours."""
    path = Path(lab._environment()["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab/toc-extension/registry.jupyterlab-settings"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"includeOutput": False}))
    yield
    path.unlink()


@pytest.mark.timeout(240)
def test_no_payload_runs_or_fetches_through_the_renderer(lab, lab_page, toc_without_outputs, tmp_path):
    markers = write_notebook(lab)
    lab_page.add_init_script(PAGE_CHECKS)
    lab_page.open(NOTEBOOK)
    page = lab_page.page
    expected = 2 * len(PAYLOADS)
    page.wait_for_function(f"() => document.querySelectorAll('.agy-transcript').length === {expected}",
                           timeout=60_000)
    page.wait_for_timeout(SETTLE_MS)

    assert page.locator(".jp-OutputArea .agy-static").count() == 0, "the renderer draws them, not text/html"
    assert lab_page.pwned() is None, [p for p in PAYLOADS if p.id in (lab_page.pwned() or [])]
    assert lab_page.dialogs == []
    assert lab_page.foreign_requests == []
    unsafe = page.evaluate("""() => [...document.querySelectorAll('.agy-transcript *')]
        .map((el) => window.__agyUnsafe(el, true)).filter(Boolean)""")
    assert unsafe == []
    shown = page.evaluate("""(n) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].slice(0, n)
        .map((cell) => cell.querySelector('.jp-OutputArea').innerText)""", len(markers))
    missing = [m for index, wanted in markers.items() for m in wanted if m not in shown[index]]
    assert missing == [], f"replies not shown: {missing[:20]}"
    thoughts = page.evaluate("() => [...document.querySelectorAll('.agy-transcript .agy-thoughts')].map((d) => d.textContent).join(' ')")
    assert all(f"AGYT{p.id}X" in thoughts for p in PAYLOADS), "the thoughts are kept (folded)"
    lab_page.screenshot(tmp_path / "labext-xss.png")

    # the positive control: the same kind of markup, put into the page unsanitized, is noticed
    page.evaluate("(markup) => document.body.insertAdjacentHTML('beforeend', markup)", CONTROL)
    page.wait_for_function("() => (window.__agyPwned ?? []).includes('control')", timeout=10_000)
    assert lab_page.foreign_requests == [f"https://{EVIL_HOST}/control.png"]
