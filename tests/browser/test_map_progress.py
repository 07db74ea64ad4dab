"""`%%chat NAME --map DF` in a real JupyterLab: the progress widget renders (bar, counts, Stop), its Stop button
stops the map with the finished rows kept, and the same cell run again finishes only the rest."""
from __future__ import annotations

import time

import pytest

from agy_jupyter.testing import Reply

SETUP = ("import pandas as pd\n"
         "tickets = pd.DataFrame({'text': [f'ticket {i}' for i in range(40)]})\n"
         "%load_ext agy_jupyter\n"
         "%agent create sorter")
MAP = "%%chat sorter --map tickets -o labels --concurrency 2\nSort {text}"
CHECK = "print('stopped rows:', int(labels['error'].notna().sum()), 'answered:', int(labels['answer'].notna().sum()))"


@pytest.mark.timeout(120)
def test_the_progress_widget_stops_the_map_and_a_rerun_finishes_it(lab, lab_page, fake_gemini, tmp_path):
    fake_gemini.default = Reply.echo(ttft=0.5)  # 40 rows, 2 at a time: ~10 s unless stopped
    try:
        lab.write_notebook("map.ipynb", [SETUP, MAP, CHECK])
        lab_page.open("map.ipynb")
        lab_page.run_cell(0)
        before = lab_page.prompts()[1]
        lab_page.start_cell(1)
        output = lab_page.cell(1).locator(".jp-OutputArea")
        output.locator(".widget-hprogress").wait_for(timeout=30_000)
        output.get_by_text("in flight", exact=False).first.wait_for(timeout=30_000)
        deadline = time.monotonic() + 30
        while "0/40 done" in output.inner_text() and time.monotonic() < deadline:
            lab_page.page.wait_for_timeout(100)
        lab_page.screenshot(tmp_path / "map-progress.png")
        output.get_by_role("button", name="Stop").click()
        lab_page.wait_for_cells(range(1, 2), {1: before}, 30)
        final = lab_page.outputs_text(1)
        assert "(stopped)" in final and "/40 done" in final, final
        assert output.locator(".widget-hprogress").count() == 0  # the static line replaced the widget
        lab_page.run_cell(2)
        stopped = int(lab_page.outputs_text(2).split("stopped rows:")[1].split()[0])
        assert 0 < stopped < 40
        asked = len(fake_gemini.requests)
        lab_page.run_cell(1)  # the same cell again: only the stopped rows are asked
        assert len(fake_gemini.requests) - asked == stopped
        lab_page.run_cell(2)
        assert "stopped rows: 0 answered: 40" in lab_page.outputs_text(2)
        lab_page.screenshot(tmp_path / "map-done.png")
    finally:
        fake_gemini.default = Reply.echo()
