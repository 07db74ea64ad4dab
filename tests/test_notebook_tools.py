"""The notebook tools against a real IPython shell's namespace (in this process), and run_python's parts."""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import agy_jupyter as agy
from agy_jupyter.agent.builtin_tools import BuiltinContext, BuiltinTools, build
from agy_jupyter.agent.content import Blob
from agy_jupyter.agent.tools import ToolResult
from agy_jupyter.notebook import notebook_tools as nt
from agy_jupyter.notebook import run_python as rp
from agy_jupyter.testing import Reply


@pytest.fixture(scope="module")
def shell():
    """A real IPython shell in this process (history in memory), gone again after this module."""
    InteractiveShell.clear_instance()  # another module's shell (its namespace, its config) is not ours
    shell = InteractiveShell.instance(config=Config({"HistoryManager": {"hist_file": ":memory:"}}))
    yield shell
    InteractiveShell.clear_instance()  # later tests must not find a shell that is not theirs


@pytest.fixture
def ns(shell):
    added: list[str] = []

    def put(**values):
        shell.user_ns.update(values)
        added.extend(values)
    yield put
    for name in added:
        shell.user_ns.pop(name, None)


def test_builtin_factories_register_with_effects_and_preview():
    tools = {t.name: t for t in build(list(BuiltinTools)[:4], BuiltinContext(workspace=__import__("pathlib").Path(".")))}
    assert {n: t.effect for n, t in tools.items()} == {"list_variables": "read", "inspect_variable": "read",
                                                       "notebook_history": "read", "run_python": "execute"}
    assert tools["run_python"].preview({"code": "1+1"}) == {"kind": "code", "text": "1+1", "language": "python"}
    assert tools["run_python"].is_async and tools["run_python"].timeout == rp.RUN_TIMEOUT
    assert "name" in tools["inspect_variable"].parameters_json_schema["properties"]


def test_list_variables_leaves_out_modules_private_ipython_and_our_objects(shell, ns, make_agent):
    ns(frame=pd.DataFrame({"a": [1, 2]}), arr=np.zeros((3, 4)), words=["x", "y"], _hidden=1, np_mod=np,
       agy_mod=agy, my_agent=make_agent("lv"), n=5)
    listing = nt.list_variables()
    assert "frame: pandas.DataFrame (shape 2x1)" in listing
    assert "arr: numpy.ndarray (shape 3x4)" in listing and "words: list (len 2)" in listing and "n: int" in listing
    for absent in ("_hidden", "np_mod", "agy_mod", "my_agent", "In:", "Out:", "get_ipython", "exit"):
        assert absent not in listing


def test_inspect_dataframe_gives_dtypes_nulls_head_tail_describe_and_memory(ns):
    ns(df=pd.DataFrame({"x": [1.0, None, 3.0, 4.0, 5.0, 6.0, 7.0], "s": list("abcdefg")}))
    text = nt.inspect_variable("df", rows=2)
    assert "DataFrame: 7 rows x 2 columns" in text and "memory:" in text
    assert "x: float64, 1 null" in text and "\n  s: " in text and "s: 7 distinct" in text
    assert "head(2):" in text and "tail(2):" in text and "describe (numeric columns):" in text


def test_inspect_series_numpy_and_other_values(ns):
    class Broken:
        def __repr__(self):
            raise ValueError("no repr for you")
    ns(ser=pd.Series([1, 2, 3], name="v"), arr=np.arange(12.0).reshape(3, 4), obj=Broken(), text="hi" * 10_000)
    assert "Series: 3 rows x 1 columns" in nt.inspect_variable("ser")
    arr = nt.inspect_variable("arr")
    assert "shape (3, 4), dtype float64" in arr and "min 0, max 11, mean 5.5, std 3.45205, nan 0" in arr
    assert "<Broken instance at" in nt.inspect_variable("obj")  # a repr that raises is not the turn's end
    assert len(nt.inspect_variable("text")) < 2200  # reprlib bounds the string
    assert "no variable named 'nope'" in nt.inspect_variable("nope")


def test_caps_hold_on_a_million_row_frame_and_a_wide_one(ns):
    big = pd.DataFrame(np.random.default_rng(0).standard_normal((1_000_000, 20)), columns=[f"c{i}" for i in range(20)])
    wide = pd.DataFrame(np.ones((10, 300)), columns=[f"column_with_a_long_name_{i}" for i in range(300)])
    ns(big=big, wide=wide)
    text = nt.inspect_variable("big", rows=50)
    assert len(text) <= nt.OUTPUT_CAP and "1000000 rows x 20 columns" in text
    assert "[output cut:" in text  # 50 head + 50 tail rows of 20 columns do not fit: the model is told
    wide_text = nt.inspect_variable("wide")
    assert "the first 20 of 300 columns are shown" in wide_text and len(wide_text) <= nt.OUTPUT_CAP


def test_cap_says_when_it_cut():
    assert nt.cap("short") == "short"
    cut = nt.cap("x" * 10_000, 100)
    assert len(cut) == 100 and cut.endswith("[output cut: 100 of 10000 characters shown]")


def test_notebook_history_shows_inputs_and_outputs(shell):
    shell.run_cell("history_probe = 40 + 2", store_history=True)
    shell.run_cell("history_probe", store_history=True)
    text = nt.notebook_history(2)
    assert "history_probe = 40 + 2" in text and ": 42" in text


# -- run_python's parts ----------------------------------------------------------------------------

def test_job_returns_stdout_result_and_defines_names(shell):
    job = rp.PythonJob("import sys\nprint('out')\nprint('err', file=sys.stderr)\njob_var = 3\njob_var * 2", shell)
    outcome = job.run()
    assert (outcome.stdout, outcome.stderr, outcome.result) == ("out\n", "err\n", "6")
    assert shell.user_ns["job_var"] == 3


def test_what_display_shows_is_told_to_the_model(shell):
    outcome = rp.PythonJob("from IPython.display import display\ndisplay({'a': 1})", shell).run()
    assert outcome.response()["displayed"] == "{'a': 1}"
    assert "publish" not in vars(shell.display_pub)  # the wrapper is gone after the run


def test_job_reports_syntax_errors_and_short_tracebacks(shell):
    assert "SyntaxError" in rp.PythonJob("def (", shell).run().error
    error = rp.PythonJob("def f():\n    raise KeyError('k')\nf()", shell).run().error
    assert error.startswith("Traceback") and "KeyError: 'k'" in error and "run_python.py" not in error


def test_output_is_capped_and_the_model_is_told(shell):
    outcome = rp.PythonJob("print('y' * 100_000)", shell).run()
    answer = outcome.response()
    assert len(answer["stdout"]) <= nt.OUTPUT_CAP and "[output cut:" in answer["stdout"]


def test_many_small_prints_are_capped_and_the_total_is_told(shell):
    answer = rp.PythonJob("for i in range(20_000):\n    print(i)", shell).run().response()
    assert len(answer["stdout"]) <= nt.OUTPUT_CAP // 2 and "[output cut:" in answer["stdout"]
    assert rp.PythonJob("print('x' * 9000, end='')\nprint('y' * 10)", shell).run().stdout.endswith(
        "\n[11 more characters were printed]")  # "y" * 10 and its newline


def test_stop_from_another_thread_ends_a_python_loop(shell):
    job = rp.PythonJob("while True:\n    pass", shell)
    threading.Timer(0.3, job.stop).start()
    started = time.monotonic()
    outcome = job.run()
    assert "stopped" in outcome.error and time.monotonic() - started < 5


def test_stop_off_the_main_thread_ends_a_python_loop(shell):
    job = rp.PythonJob("while True:\n    pass", shell)
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(job.run()))
    worker.start()
    time.sleep(0.3)
    job.stop()  # no signals for a worker thread: an asynchronous exception instead
    worker.join(5)
    assert not worker.is_alive() and "stopped" in outcomes[0].error


def test_blocking_jobs_run_on_the_waiting_thread_and_refuse_after():
    jobs = rp.BlockingJobs()
    seen = []
    done = threading.Event()

    def worker():
        seen.append(jobs.call(threading.current_thread).result(5))
        done.set()
    threading.Thread(target=worker).start()
    jobs.serve_until(done.is_set)
    assert seen == [threading.current_thread()]
    with pytest.raises(RuntimeError, match="no longer waiting"):
        jobs.call(lambda: None).result(1)


CHART_PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 100


def chart() -> ToolResult:
    """Draw a chart."""
    return ToolResult({"figures": "1 figure"}, [Blob(data=CHART_PNG, mime_type="image/png")])


def chart_response(fake, make_agent, model: str) -> tuple[dict, object]:
    """Let an agent on `model` call `chart` once; the functionResponse it sent back, and the agent."""
    agent = make_agent(f"chart-{model}", tools=[chart], policies=[agy.allow("chart")], model=model)
    fake.enqueue(Reply.function_call("chart", {}, id="c1"), Reply.text("I see it."))
    agent.chat("draw")
    return fake.requests[1].function_response_part("c1"), agent


def test_a_tool_result_with_an_image_reaches_the_model_as_a_function_response_part(fake, make_agent):
    response, _ = chart_response(fake, make_agent, "gemini-3-flash-preview")
    assert response["response"] == {"figures": "1 figure"}
    assert response["parts"][0]["inlineData"]["mimeType"] == "image/png"


def test_a_gemini_2_model_gets_a_note_instead_of_the_image_and_the_history_keeps_it(fake, make_agent):
    """Gemini 1.x/2.x refuse media in a function response: the request says it was left out; the history keeps it."""
    response, agent = chart_response(fake, make_agent, "gemini-2.5-flash")
    assert "parts" not in response and response["response"]["figures"] == "1 figure"
    assert "1 image(s) or file(s) this tool returned were not sent" in response["response"]["media"]
    kept = [p.function_response for m in agent.history() for p in m.parts if p.function_response]
    assert kept[0].parts[0].inline_data.data == CHART_PNG


def test_run_python_with_no_kernel_main_thread_is_a_clear_tool_error(monkeypatch, shell):
    monkeypatch.setattr(rp.main_thread, "kernel_main", None)
    with pytest.raises(RuntimeError, match="load_ext"):
        asyncio.run(rp.run_python("1"))


def test_run_python_outside_a_kernel_loop_says_so(monkeypatch, shell):
    monkeypatch.setattr(rp.main_thread, "kernel_main", rp.main_thread.MainThread())  # made outside any loop, as in terminal IPython
    with pytest.raises(RuntimeError, match="Jupyter kernel"):
        asyncio.run(rp.run_python("1"))
