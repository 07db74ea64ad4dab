"""A saved notebook with a few ordinary replies reopens readable: formatted text, code, a tool call, links.

Also the example of the browser fixture at work (see conftest.py). The screenshot goes to the test's tmp
directory, or to $AGY_SCREENSHOT_DIR when set (to look at it).
"""
from __future__ import annotations

import pytest

from agy_jupyter.testing import Chunk, Reply

NOTEBOOK = "benign.ipynb"
SETUP = ("def lookup(city: str) -> dict:\n"
         '    """The weather in a city."""\n'
         "    return {'city': city, 'forecast': 'sunny', 'high_c': 21}\n"
         "%load_ext agy_jupyter\n"
         "%agent create helper --policy allow --tools lookup")
REPLY_TEXT = ("## Weather report\n\n"
              "Paris will be **sunny** with a high of 21 °C. Details: [docs](https://example.org/docs).\n\n"
              "| city | high |\n|---|---|\n| Paris | 21 |\n\n"
              "```python\ndef celsius(f):\n    return (f - 32) * 5 / 9\n```\n\n"
              "- first point\n- second point\n\n"
              "A chart: ![forecast chart](https://evil.example/chart.png)\n")


@pytest.mark.timeout(300)
def test_reopened_notebook_shows_ordinary_replies(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.enqueue(
        Reply(chunks=[Chunk.thought("The user wants the weather; call lookup."),
                      Chunk.function_call("lookup", {"city": "Paris"}, id="call-1")]),
        Reply.text(REPLY_TEXT, chunks=6, delay=0.05),
        Reply.text("Anything else? Try `%agent history helper`.", chunks=2))
    lab.write_notebook(NOTEBOOK, [SETUP, "%%chat helper\nWeather in Paris?", "%%chat helper\nThanks!"])
    lab_page.open(NOTEBOOK)
    lab_page.run_cell(0)
    lab_page.run_cells(1, 2)
    lab_page.wait_for_output_text(2, "Anything else?")
    lab_page.save()
    lab_page.close_and_reopen()

    reply = lab_page.cell(1).locator(".jp-OutputArea-output")
    text = lab_page.outputs_text(1)
    for words in ("Weather report", "sunny", "lookup", "Paris", "first point", "forecast chart"):
        assert words in text, f"{words!r} not shown in:\n{text}"
    assert reply.locator("h2", has_text="Weather report").count() == 1
    assert reply.locator("strong", has_text="sunny").count() == 1
    assert reply.locator("table td", has_text="Paris").count() == 1
    assert reply.locator("li").count() >= 2
    assert reply.locator("pre", has_text="def celsius").count() == 1
    assert reply.locator('a[href="https://example.org/docs"]').count() == 1
    assert reply.locator("a", has_text="forecast chart").count() == 1, "a remote image is a link with its alt text"
    assert reply.locator("img").count() == 0
    assert "Anything else?" in lab_page.outputs_text(2)
    assert lab_page.foreign_requests == [] and lab_page.dialogs == []

    lab_page.page.set_viewport_size({"width": 1280, "height": 1500})  # the whole notebook in one picture
    shot = lab_page.screenshot(tmp_path / "reopened.png")
    assert shot.stat().st_size > 10_000
