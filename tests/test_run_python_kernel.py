"""run_python and the notebook tools in a real kernel, scripted through the fake Gemini server."""
from __future__ import annotations

import base64
import itertools
import re
import time

import pytest

from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME
from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.replies import Chunk
from agy_jupyter.testing.kernel import loaded_kernel

_names = itertools.count(1)

PLOT = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3], [4, 1, 9])\nprint('plotted')"


def new_name() -> str:
    return f"rp{next(_names)}"


@pytest.fixture(scope="module")
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def kernel(server):
    with loaded_kernel({**server.env(), "MPLBACKEND": "Agg"}, chat_timeout=60) as k:
        yield k


@pytest.fixture
def fresh(server):
    server.reset()
    return server

MEDIA_MODEL = "gemini-3-flash-preview"


def agent(kernel) -> str:
    name = new_name()
    # a Gemini 3 model: older ones refuse images in tool results, so theirs are left out of the request
    execution = kernel.run(f"%agent create {name} --builtin notebook --policy allow --model {MEDIA_MODEL}")
    assert not execution.errors(), execution.errors()
    return name



def test_run_python_defines_a_variable_the_next_cell_uses(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "made_by_agent = 6 * 7\nmade_by_agent"}, id="c1"),
                  Reply.text("Done."))
    execution = kernel.run(f"%%chat {name}\nmake a variable")
    assert not execution.errors()
    assert fresh.requests[1].function_response("c1") == {"result": "42"}
    assert kernel.run("print(made_by_agent + 1)").text().strip() == "43"


def test_print_lands_in_the_chat_cell_and_reaches_the_model(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "print('hello from the agent')"}, id="c1"),
                  Reply.text("Printed."))
    execution = kernel.run(f"%%chat {name}\nprint something")
    assert "hello from the agent" in execution.text()  # a stream output of the %%chat cell itself
    assert fresh.requests[1].function_response("c1")["stdout"] == "hello from the agent\n"


def _shown_ops(messages: list[dict]) -> list:
    """The ops a front end ends up showing: a message with reset (the replay after "rendered") starts over."""
    ops: list = []
    for message in messages:
        ops = list(message["ops"]) if message.get("reset") else ops + list(message["ops"])
    return ops


def _reply_parts(outputs: list[dict]) -> list[dict]:
    return [o["data"][TRANSCRIPT_MIME] for o in outputs if TRANSCRIPT_MIME in o.get("data", {})]


def test_code_output_sits_between_the_text_before_and_after_it(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply(chunks=[Chunk.text("Let me plot it."), Chunk.function_call("run_python", {"code": PLOT},
                                                                                   id="c1")]),
                  Reply.text("The line dips, then climbs."))
    execution = kernel.run(f"%%chat {name}\nplot it")
    outputs = execution.cell_outputs()
    kinds = ["reply" if TRANSCRIPT_MIME in o.get("data", {}) else "image" if "image/png" in o.get("data", {})
             else o.get("name", o["output_type"]) for o in outputs]
    assert kinds == ["reply", "stdout", "image", "reply"], kinds
    above, below = _reply_parts(outputs)
    assert above["status"] == "continued below" and [b["type"] for b in above["blocks"]] == ["text", "tool"]
    assert above["blocks"][1]["status"] == "ok"  # the call's result went to its card above the output
    assert below["status"] == "done" and [b["type"] for b in below["blocks"]] == ["text"] and below["usage"]
    assert "Let me plot it." in outputs[0]["data"]["text/html"] and "climbs" not in outputs[0]["data"]["text/html"]
    assert "The line dips, then climbs." in outputs[3]["data"]["text/plain"]
    views = [m["content"]["comm_id"] for _, _, m in kernel.iopub_log if m["msg_type"] == "comm_open"
             and m["parent_header"].get("msg_id") == execution.msg_id
             and str(m["content"]["data"]["state"].get("_anywidget_id", "")).endswith("StreamView")]
    assert len(views) == 2  # live, each part had its own view: the text went to the one above or below the plot
    ops = [_shown_ops(kernel.custom_messages(view)) for view in views]
    assert "".join(op[1] for op in ops[0] if op[0] == "text") == "Let me plot it."
    assert [op for op in ops[0] if op[0] == "status"][-1] == ["status", {"status": "continued below", "detail": ""}]
    assert [op[1]["status"] for op in ops[0] if op[0] == "tool_result"] == ["ok"]  # the card above got its result
    assert "".join(op[1] for op in ops[1] if op[0] == "text") == "The line dips, then climbs."


def test_code_that_shows_nothing_leaves_the_reply_in_one_output(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "quiet = 1"}, id="c1"), Reply.text("Set."))
    outputs = kernel.run(f"%%chat {name}\nset it").cell_outputs()
    assert [part["status"] for part in _reply_parts(outputs)] == ["done"] and len(outputs) == 1


def test_runs_on_the_kernel_main_thread(kernel, fresh):
    name = agent(kernel)
    code = "import threading\nthreading.current_thread() is threading.main_thread()"
    fresh.enqueue(Reply.function_call("run_python", {"code": code}, id="c1"), Reply.text("ok"))
    kernel.run(f"%%chat {name}\nwhich thread")
    assert fresh.requests[1].function_response("c1") == {"result": "True"}


def test_an_exception_comes_back_as_a_short_traceback(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "x = 1\n1 / 0"}, id="c1"), Reply.text("oops"))
    execution = kernel.run(f"%%chat {name}\ndivide")
    error = fresh.requests[1].function_response("c1")["error"]
    assert error.startswith("Traceback") and "ZeroDivisionError" in error and "1 / 0" in error
    assert "run_python.py" not in error  # our own frames are not the model's business
    assert not execution.errors()  # the cell itself succeeded


def test_a_figure_appears_in_the_cell_and_reaches_the_model_as_an_image(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": PLOT}, id="c1"), Reply.text("A line."))
    execution = kernel.run(f"%%chat {name}\nplot it")
    images = [m for m in execution.messages if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]]
    assert len(images) == 1
    assert re.fullmatch(r"\[figure \(\d+x\d+ PNG\)\]", images[0]["content"]["data"]["text/plain"])  # not a repr
    response = fresh.requests[1].function_response_part("c1")
    assert response["response"]["stdout"] == "plotted\n" and "1 figure" in response["response"]["figures"]
    blob = response["parts"][0]["inlineData"]
    png = base64.urlsafe_b64decode(blob["data"])
    assert blob["mimeType"] == "image/png" and png.startswith(b"\x89PNG") and len(png) <= 400_000
    assert kernel.run("import matplotlib.pyplot as plt; print(plt.get_fignums())").text().strip() == "[]"


def test_blocking_mode_serves_run_python_while_it_waits(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "blocking_var = 'set'\nprint('in blocking')"},
                                      id="c1"), Reply.text("ok"))
    execution = kernel.run(f"import agy_jupyter as agy\nr = agy.display_chat_blocking({name!r}, 'go')")
    assert not execution.errors(), execution.errors()
    assert "in blocking" in execution.text()
    assert fresh.requests[1].function_response("c1")["stdout"] == "in blocking\n"
    assert kernel.run("print(blocking_var)").text().strip() == "set"


def test_background_mode_runs_when_the_kernel_is_free_and_prints_into_its_cell(kernel, fresh):
    name = agent(kernel)
    fresh.enqueue(Reply.function_call("run_python", {"code": "bg_var = 5\nprint('from the background')"},
                                      id="c1"), Reply.text("ok"))
    execution = kernel.run(f"%%chat {name} --background\ngo")
    assert fresh.wait_for_requests(2, timeout=20)
    assert fresh.requests[1].function_response("c1")["stdout"] == "from the background\n"
    time.sleep(0.3)
    assert "from the background" in execution.text()  # pinned to the cell that started it
    assert kernel.run("print(bg_var)").text().strip() == "5"


def test_interrupt_stops_a_long_run_and_the_history_stays_valid(kernel, fresh):
    name = agent(kernel)
    code = "import time\nfor _ in range(600):\n    time.sleep(0.05)\nfinished_long_run = True"
    fresh.enqueue(Reply.function_call("run_python", {"code": code}, id="c1"), Reply.text("unused"),
                  Reply.text("Next turn works."))
    execution = kernel.execute(f"%%chat {name}\nrun long", wait=False)
    assert fresh.wait_for_requests(1, timeout=20)
    time.sleep(1.0)  # the code is running on the main thread
    started = time.monotonic()
    kernel.interrupt()
    kernel.wait(execution, timeout=20)
    assert time.monotonic() - started < 10  # not the 30 s the loop would take
    assert [e["ename"] for e in execution.errors()] == ["ReplyInterrupted"]  # the cell stops, as Run All needs
    assert "finished_long_run" not in kernel.run("print(dir())").text()
    after = kernel.run(f"%%chat {name}\nand now?")
    assert not after.errors()  # the model accepted the repaired history
    last = fresh.requests[-1]
    assert last.last_user_text.strip() == "and now?"
    # the interrupted call is answered (cancelled) in the history the model sees
    assert "error" in last.function_response("c1") or "cancelled" in str(last.function_response("c1"))


def test_notebook_tools_see_the_user_namespace(kernel, fresh):
    name = agent(kernel)
    kernel.run("import numpy as np, pandas as pd\n"
               "big = pd.DataFrame(np.random.default_rng(0).standard_normal((1_000_000, 20)),"
               " columns=[f'c{i}' for i in range(20)])\nsmall_list = [1, 2, 3]\n_private = 1")
    fresh.enqueue(Reply.function_call("list_variables", {}, id="c1"),
                  Reply.function_call("inspect_variable", {"name": "big", "rows": 3}, id="c2"),
                  Reply.function_call("notebook_history", {"n": 3}, id="c3"), Reply.text("seen"))
    execution = kernel.run(f"%%chat {name}\nlook")
    assert not execution.errors()
    listing = fresh.requests[1].function_response("c1")["result"]
    assert "big: pandas.DataFrame (shape 1000000x20)" in listing and "small_list: list (len 3)" in listing
    assert "_private" not in listing and "np:" not in listing and "In:" not in listing
    inspected = fresh.requests[2].function_response("c2")["result"]
    assert "1000000 rows x 20 columns" in inspected and "describe" in inspected and len(inspected) <= 8000
    history = fresh.requests[3].function_response("c3")["result"]
    assert "small_list = [1, 2, 3]" in history


def test_a_timeout_stops_the_code_even_in_a_sleep_and_tells_the_model(kernel, fresh):
    kernel.run("import agy_jupyter.notebook.run_python as _rp\n_rp.RUN_TIMEOUT = 1.0")
    try:
        name = agent(kernel)  # its run_python is built with the 1 s timeout
    finally:
        kernel.run("_rp.RUN_TIMEOUT = 300.0")
    fresh.enqueue(Reply.function_call("run_python", {"code": "import time\ntime.sleep(60)\nnever_set = 1"}, id="c1"),
                  Reply.text("Too slow."))
    started = time.monotonic()
    execution = kernel.run(f"%%chat {name}\nsleep", timeout=30)
    assert time.monotonic() - started < 15
    assert not execution.errors()  # the cell ends normally: only the call failed
    assert "timed out after 1 s" in fresh.requests[1].function_response("c1")["error"]
    assert kernel.run("print('never_set' in dir())").text().strip() == "False"


def test_with_the_ask_policy_the_code_runs_only_after_approve(kernel, fresh):
    name = new_name()
    kernel.run(f"%agent create {name} --builtin run_python --policy ask")
    fresh.enqueue(Reply.function_call("run_python", {"code": "approved_var = 'yes'"}, id="c1"), Reply.text("ok"))
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"%%chat {name}\nset it", wait=False)
    comm = kernel.frontend.wait_for("ApprovalView", count=before + 1)
    kernel.send_comm(comm, {"type": "decision", "approved": True, "reason": "", "always": False})
    kernel.wait(execution)
    assert fresh.requests[1].function_response("c1") == {"result": None}
    assert kernel.run("print(approved_var)").text().strip() == "yes"


def test_plt_show_with_the_inline_backend_still_gives_the_model_the_figure(kernel, fresh):
    name = agent(kernel)
    kernel.run("%matplotlib inline")
    try:
        fresh.enqueue(Reply.function_call("run_python", {"code": PLOT + "\nplt.show()\nprint('after')"}, id="c1"),
                      Reply.text("seen"))
        execution = kernel.run(f"%%chat {name}\nplot and show")
    finally:
        kernel.run("import matplotlib; matplotlib.use('Agg')")
    outputs = [m for m in execution.messages if m["msg_type"] in ("display_data", "stream")]
    kinds = ["png" if "image/png" in m["content"].get("data", {}) else m["content"].get("text", "").strip()
             for m in outputs if m["msg_type"] == "stream" or "image/png" in m["content"]["data"]]
    assert kinds == ["plotted", "png", "after"]  # in the order the code made them, shown once
    response = fresh.requests[1].function_response_part("c1")
    assert response["parts"][0]["inlineData"]["mimeType"] == "image/png"


def test_scripted_session_lists_inspects_plots_approved_once_denied_once(kernel, fresh):
    """The issue's scenario in a real kernel: list, inspect, run code that plots (Approve), run more (Deny), answer."""
    name = new_name()
    kernel.run("import pandas as pd\nsales = pd.DataFrame({'month': range(1, 13), 'units': [5, 7, 9, 4, 6, 8, 12,"
               " 15, 11, 9, 7, 14]})")
    # read-only tools allowed, run_python asks (the default the policies work makes; spelled out here)
    created = kernel.run(f"import agy_jupyter as agy\n{name} = agy.Agent({name!r}, model={MEDIA_MODEL!r}, "
                         f"enabled_tools=['notebook'], "
                         "policies=[agy.allow('list_variables'), agy.allow('inspect_variable')])")
    assert not created.errors(), created.errors()
    plot = "import matplotlib.pyplot as plt\nplt.plot(sales.month, sales.units)\nsales.units.sum()"
    fresh.enqueue(Reply.function_call("list_variables", {}, id="c1"),
                  Reply.function_call("inspect_variable", {"name": "sales"}, id="c2"),
                  Reply.function_call("run_python", {"code": plot}, id="c3"),
                  Reply.function_call("run_python", {"code": "del sales"}, id="c4"),
                  Reply.text("Sales peak in August."))
    before = len(kernel.frontend.opened["ApprovalView"])
    execution = kernel.execute(f"await agy.display_chat({name}, 'What do my sales look like?')", wait=False)
    kernel.send_comm(kernel.frontend.wait_for("ApprovalView", count=before + 1, timeout=20),
                     {"type": "decision", "approved": True, "reason": "", "always": False})
    kernel.send_comm(kernel.frontend.wait_for("ApprovalView", count=before + 2, timeout=20),
                     {"type": "decision", "approved": False, "reason": "keep my data", "always": False})
    kernel.wait(execution)
    assert not execution.errors()
    assert len(kernel.frontend.opened["ApprovalView"]) == before + 2  # the read-only tools did not ask
    assert "sales: pandas.DataFrame (shape 12x2)" in fresh.requests[1].function_response("c1")["result"]
    assert "12 rows x 2 columns" in fresh.requests[2].function_response("c2")["result"]
    plotted = fresh.requests[3].function_response_part("c3")
    assert plotted["response"]["result"] == "np.int64(107)" and plotted["parts"][0]["inlineData"]["mimeType"] == "image/png"
    assert "keep my data" in fresh.requests[4].function_response("c4")["error"]
    assert kernel.run("print(len(sales))").text().strip() == "12"  # the denied code never ran
    assert any("image/png" in m["content"].get("data", {}) for m in execution.messages
               if m["msg_type"] == "display_data")


def test_agent_chat_in_a_plain_cell_gets_a_clear_error_not_a_hang(kernel, fresh):
    name = new_name()
    kernel.run("import agy_jupyter.notebook.run_python as _rp\n_rp.UNBOUND_START_TIMEOUT = 1.0\n"
               f"import agy_jupyter as agy\n{name} = agy.Agent({name!r}, enabled_tools=['run_python'], "
               "policies=[agy.allow('run_python')])")
    fresh.enqueue(Reply.function_call("run_python", {"code": "never_runs = 1"}, id="c1"), Reply.text("I could not."))
    started = time.monotonic()
    try:
        execution = kernel.run(f"r = {name}.chat('go')", timeout=30)  # blocks the kernel's loop
    finally:
        kernel.run("_rp.UNBOUND_START_TIMEOUT = 10.0")
    assert time.monotonic() - started < 15 and not execution.errors()
    assert "%%chat" in fresh.requests[1].function_response("c1")["error"]
    assert kernel.run("print('never_runs' in dir())").text().strip() == "False"
