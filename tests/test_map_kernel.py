"""`%%chat NAME --map DF` in a real kernel: the progress widget's messages, its Stop button, a kernel restart
in the middle of a map and the rerun that resumes it, and the headless text bar under nbclient."""
from __future__ import annotations

import re
import sqlite3
import time

import nbformat
import pytest
from nbclient import NotebookClient

from agy_jupyter.agent.map import STOPPED
from agy_jupyter.testing import Reply
from agy_jupyter.testing.kernel import Kernel, loaded_kernel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
FRAME = "import pandas as pd\ntickets = pd.DataFrame({{'text': [f'row {{i}}' for i in range({n})]}})\n"
MAP_CELL = "%%chat classifier --map tickets -o labels --concurrency {c}\nClassify {{text}}"


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path


def widget_comms(kernel: Kernel, since: int) -> dict[str, str]:
    """model name -> comm id of the widgets opened since `since`."""
    return {m["content"]["data"]["state"]["_model_name"]: m["content"]["comm_id"] for m in kernel.comm_opens(since)}


def state_updates(kernel: Kernel, comm_id: str, key: str) -> list:
    return [m["content"]["data"]["state"][key] for _, _, m in list(kernel.iopub_log)
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
            and m["content"]["data"].get("method") == "update" and key in m["content"]["data"].get("state", {})]


def served(fake) -> int:
    return sum(1 for r in fake.requests if r.completed_time and not r.disconnected)


def stored_rows(data_dir) -> int:
    with sqlite3.connect(data_dir / "agy_jupyter.sqlite3") as db:
        return db.execute("SELECT count(*) FROM map_rows").fetchone()[0]


def test_the_map_cell_shows_progress_in_a_widget_then_a_static_line(fake, data_dir):
    fake.default = Reply.echo(ttft=0.1)
    with loaded_kernel({**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)}) as kernel:
        kernel.run(FRAME.format(n=24) + "%agent create classifier")
        mark = len(kernel.iopub_log)
        execution = kernel.run(MAP_CELL.format(c=2))  # about 1.2 s: several progress events
        comms = widget_comms(kernel, mark)
        assert {"IntProgressModel", "HTMLModel", "ButtonModel", "HBoxModel"} <= set(comms)
        values = state_updates(kernel, comms["IntProgressModel"], "value")
        assert len(values) >= 2 and values == sorted(values) and 0 < values[-1] <= 24
        labels = state_updates(kernel, comms["HTMLModel"], "value")
        assert any("in flight" in label and "rows/s" in label for label in labels)
        outputs = execution.cell_outputs()
        assert len(outputs) == 1 and WIDGET_VIEW not in outputs[0]["data"]  # the static line replaced it
        final = outputs[0]["data"]["text/plain"]
        assert final.startswith("map [########################] 24/24 done") and "tokens" in final
        check = kernel.run("print(labels['answer'].tolist()[:2], labels['error'].isna().all(), len(labels))")
        assert check.text().strip() == "['You said: Classify row 0', 'You said: Classify row 1'] True 24"


def test_the_stop_button_stops_the_map_and_the_rerun_asks_only_the_rest(fake, data_dir):
    fake.default = Reply.echo(ttft=0.1)
    with loaded_kernel({**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)}) as kernel:
        kernel.run(FRAME.format(n=40) + "%agent create classifier")
        mark = len(kernel.iopub_log)
        execution = kernel.execute(MAP_CELL.format(c=2), wait=False)
        deadline = time.monotonic() + 20
        while served(fake) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        kernel.send_comm(widget_comms(kernel, mark)["ButtonModel"], {"event": "click"})
        kernel.wait(execution, 20)
        assert execution.reply["content"]["status"] == "ok"
        assert "(stopped)" in execution.cell_outputs()[0]["data"]["text/plain"]
        first = len(fake.requests)
        assert first < 20
        kernel.run(f"done = labels[labels['error'].isna()].index.tolist(); "
                   f"assert (labels.loc[labels['error'].notna(), 'error'] == {STOPPED!r}).all()")
        kernel.run(MAP_CELL.format(c=4))
        asked = len(fake.requests) - first
        check = kernel.run("print(len(done), labels['error'].isna().all())")
        finished_before, all_ok = check.text().split()
        assert all_ok == "True" and asked == 40 - int(finished_before)


def test_a_kernel_restart_mid_map_then_the_same_cell_resumes(fake, data_dir):
    fake.default = Reply.echo(ttft=0.1)
    kernel = Kernel(env={**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)})
    setup = "%load_ext agy_jupyter\n" + FRAME.format(n=60) + "%agent create classifier"
    try:
        kernel.run(setup)
        kernel.execute(MAP_CELL.format(c=4), wait=False)
        deadline = time.monotonic() + 30
        while served(fake) < 16 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.7)  # past a flush of the finished rows (map_store.FLUSH_INTERVAL)
        kernel.km.restart_kernel(now=True)  # as JupyterLab's Restart: the map dies with the kernel
        kept = stored_rows(data_dir)
        assert 8 <= kept < 60
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a request sent before the new kernel listens can be lost
            if kernel.execute("1", wait=False).done.wait(3):
                break
        kernel.run(setup)
        before = len(fake.requests)
        kernel.run(MAP_CELL.format(c=8))
        assert len(fake.requests) - before == 60 - kept  # the rows finished before the restart are skipped
        check = kernel.run("print(labels['error'].isna().all(), labels['answer'].tolist()[59])")
        assert check.text().strip() == "True You said: Classify row 59"
    finally:
        kernel.shutdown()


def test_nbclient_keeps_the_text_bar(fake, data_dir, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data_dir))
    fake.default = Reply.echo(ttft=0.02)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext agy_jupyter\n" + FRAME.format(n=12) + "%agent create classifier",
        MAP_CELL.format(c=3), "print(labels['answer'].tolist()[-1])")]
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    outputs = notebook.cells[1].outputs
    assert len(outputs) == 1 and WIDGET_VIEW not in outputs[0]["data"]
    assert re.fullmatch(r"map \[#{24}\] 12/12 done, [\d.]+ rows/s, [\d,]+ tokens, ~\$[\d.]+",
                        outputs[0]["data"]["text/plain"]), outputs[0]["data"]["text/plain"]
    assert notebook.cells[2].outputs[0]["text"] == "You said: Classify row 11\n"


def test_the_map_cell_with_batch_submits_one_job_and_stores_its_rows(fake, data_dir):
    fake.default = Reply.echo()
    with loaded_kernel({**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)}) as kernel:
        # poll the job every 50 ms instead of the 5 s a real service warrants
        kernel.run(FRAME.format(n=4) + "%agent create classifier\n"
                   "from agy_jupyter.agent import batch, map_batch\n"
                   "map_batch.POLL = batch.Backoff(initial=0.05, maximum=0.05)")
        wrong = kernel.execute("%%chat classifier --batch\nHello")
        kernel.wait(wrong)
        assert "--batch goes with --map DF" in wrong.text() + str(wrong.errors())
        cell = kernel.execute("%%chat classifier --map tickets -o labels --batch\nClassify {text}", wait=False)
        deadline = time.monotonic() + 30
        while not fake.batches.jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(fake.batches.jobs) == 1 and not cell.done.is_set()  # the cell waits for the job
        fake.batches.finish_all()
        kernel.wait(cell, timeout=30)
        assert not cell.errors(), cell.text()
        answers = kernel.run("print(list(labels['answer']), labels['error'].isna().all())").text()
        assert answers.strip() == str([f"You said: Classify row {i}" for i in range(4)]) + " True"
        final = cell.cell_outputs()[-1]["data"]["text/plain"]  # the job's widget, ended by its last line
        assert "4 rows, succeeded" in final and stored_rows(data_dir) == 4
        assert all(r.method == "batchGenerateContent" for r in fake.requests)  # no interactive turn


BATCH_SETUP = (FRAME.format(n=4) + "%agent create classifier\n"
               "from agy_jupyter.agent import batch, map_batch\n"
               "map_batch.POLL = batch.Backoff(initial=0.05, maximum=0.05)")  # a check every 50 ms, not 5 s
BATCH_CELL = "%%chat classifier --map tickets -o labels --batch\nClassify {text}"


def wait_for_label(kernel: Kernel, comm_id: str, words: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        label = next((v for v in reversed(state_updates(kernel, comm_id, "value")) if words in v), None)
        if label is not None:
            return label
        time.sleep(0.02)
    raise AssertionError(f"no label with {words!r}: {state_updates(kernel, comm_id, 'value')[-3:]}")


def test_the_batch_map_cell_shows_its_job_in_the_widget_then_the_final_line(fake, data_dir):
    fake.default = Reply.echo()
    with loaded_kernel({**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)}) as kernel:
        kernel.run(BATCH_SETUP)
        mark = len(kernel.iopub_log)
        cell = kernel.execute(BATCH_CELL, wait=False)
        comms = widget_comms(kernel, mark)
        deadline = time.monotonic() + 20
        while "HTMLModel" not in comms and time.monotonic() < deadline:
            time.sleep(0.02)
            comms = widget_comms(kernel, mark)
        assert {"IntProgressModel", "HTMLModel", "ButtonModel", "HBoxModel"} <= set(comms)
        pending = wait_for_label(kernel, comms["HTMLModel"], "pending")
        assert re.search(r"batch batches/\S+: 4 rows, pending after \d+ s, next check in 0 s", pending), pending
        fake.batches.advance(fake.batches.pending_seconds)  # the service starts the job
        wait_for_label(kernel, comms["HTMLModel"], "running")
        assert not cell.done.is_set()
        fake.batches.finish_all()
        kernel.wait(cell, timeout=30)
        assert not cell.errors(), cell.text()
        outputs = cell.cell_outputs()
        assert len(outputs) == 1 and WIDGET_VIEW not in outputs[0]["data"]  # the static line replaced it
        final = outputs[0]["data"]["text/plain"]
        assert re.fullmatch(r"batch batches/\S+: 4 rows, succeeded after \d+ s, [\d,]+ tokens, "
                            r"~\$[\d.]+ at the batch price", final), final
        assert outputs[0]["data"]["text/html"].startswith("<pre>batch batches/")
        labels = state_updates(kernel, comms["HTMLModel"], "value")
        firsts = [next(i for i, v in enumerate(labels) if f", {state} after" in v)
                  for state in ("pending", "running", "succeeded")]
        assert firsts == sorted(firsts), labels
        assert any("succeeded after" in v and "fetching the results" in v for v in labels)
        check = kernel.run("print(labels['error'].isna().all(), labels['answer'].tolist()[3])")
        assert check.text().strip() == "True You said: Classify row 3"


def test_the_stop_button_cancels_the_batch_job(fake, data_dir):
    fake.default = Reply.echo()
    with loaded_kernel({**fake.env(), "JUPYTER_DATA_DIR": str(data_dir)}) as kernel:
        kernel.run(BATCH_SETUP.replace("0.05", "600"))  # the next check is 10 min away: Stop must not wait for it
        mark = len(kernel.iopub_log)
        cell = kernel.execute(BATCH_CELL, wait=False)
        deadline = time.monotonic() + 20
        while "HTMLModel" not in widget_comms(kernel, mark) and time.monotonic() < deadline:
            time.sleep(0.02)
        comms = widget_comms(kernel, mark)
        assert "next check in 10 min 0 s" in wait_for_label(kernel, comms["HTMLModel"], "pending")
        (name,) = fake.batches.jobs
        kernel.send_comm(comms["ButtonModel"], {"event": "click"})
        kernel.wait(cell, timeout=20)  # within seconds: the wait sleeps in pieces of batch.NAP
        assert cell.reply["content"]["status"] == "ok" and not cell.errors()
        assert fake.batches.state(name) == "CANCELLED"
        outputs = cell.cell_outputs()
        final = outputs[0]["data"]["text/plain"]
        assert "4 row(s) unfinished" in outputs[-1]["text"]  # the map's warning, as for an interactive Stop
        assert final.startswith(f"batch {name}: 4 rows, cancelled after") and "(stopped: the job was cancelled; " \
            "rows finished in earlier runs are kept, run the same map again to ask the rest)" in final, final
        check = kernel.run(f"print((labels['error'] == {STOPPED!r}).all())")
        assert check.text().strip() == "True"
        assert not any(r.method == "batchGenerateContent" for r in fake.requests)  # no row was answered
