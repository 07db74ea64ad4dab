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


BATCH_SETUP = SETUP.replace("range(40)", "range(6)") + (
    "\nfrom agy_jupyter.agent import batch, map_batch\n"
    "map_batch.POLL = batch.Backoff(initial=0.2, maximum=0.2)")  # a check every 200 ms on the fake service
# a template of its own: rows the interactive test above finished are in the same store and would be skipped
BATCH_MAP = "%%chat sorter --map tickets -o labels --batch\nSort as a batch: {text}"


@pytest.mark.timeout(120)
def test_the_batch_widget_shows_the_jobs_state_and_its_stop_cancels_the_job(lab, lab_page, fake_gemini, tmp_path):
    lab.write_notebook("batch.ipynb", [BATCH_SETUP, BATCH_MAP])
    lab_page.open("batch.ipynb")
    lab_page.run_cell(0)
    before = lab_page.prompts()[1]
    lab_page.start_cell(1)
    output = lab_page.cell(1).locator(".jp-OutputArea")
    output.locator(".widget-hprogress").wait_for(timeout=30_000)
    output.get_by_text("pending after", exact=False).first.wait_for(timeout=30_000)
    fake_gemini.batches.advance(fake_gemini.batches.pending_seconds)  # the service starts the job
    output.get_by_text("running after", exact=False).first.wait_for(timeout=30_000)
    assert "next check in 0 s" in output.inner_text()
    lab_page.screenshot(tmp_path / "batch-progress.png")
    output.get_by_role("button", name="Stop").click()
    lab_page.wait_for_cells(range(1, 2), {1: before}, 30)
    final = lab_page.outputs_text(1)
    assert "6 rows, cancelled after" in final and "rows finished in earlier runs are kept" in final, final
    assert output.locator(".widget-hprogress").count() == 0  # the static line replaced the widget
    assert [job.state for job in fake_gemini.batches.jobs.values()] == ["CANCELLED"]
    lab_page.screenshot(tmp_path / "batch-stopped.png")
