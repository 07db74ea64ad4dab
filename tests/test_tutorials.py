"""The tutorial notebooks (notebooks/*.ipynb) run headless (nbclient) against their recorded cassettes.

Each test replays one notebook's cassette (no key, no network: a FakeGemini answers from the file), runs
the committed notebook in a fresh kernel, and checks what specific cells show: the reply text, the tool
calls and their results, the figure, the parsed object. It also checks that the committed notebook
carries these same outputs (so GitHub shows what the cassette gives) and no widget references.
Re-record with `python notebooks/record_tutorials.py` (see notebooks/README.md). Replay compares each
request exactly, so a change that alters what a notebook sends the model (a prompt, a tool's output, the
PNG that notebook 3's chart becomes after a matplotlib upgrade) fails loudly until that notebook is
re-recorded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import base64
import json

import nbformat
import pytest

from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME
from agy_jupyter.testing import normalize_keys, replay

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _load_recorder():
    spec = importlib.util.spec_from_file_location("record_tutorials", NOTEBOOKS / "record_tutorials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recorder = _load_recorder()


# -- helpers -------------------------------------------------------------------------------------------

def run_from_cassette(name: str, requests: list | None = None) -> nbformat.NotebookNode:
    """The notebook executed against its cassette; every recorded request must be asked for, and matched.

    `requests`, if given, receives the model requests the kernel made (RecordedRequest objects)."""
    with replay(recorder.cassette_path(name), complete=True) as fake:
        notebook = recorder.execute(name)
    assert not fake.cassette_mismatches
    if requests is not None:
        requests.extend(fake.requests)
    return notebook


def cell(notebook: nbformat.NotebookNode, starts_with: str) -> nbformat.NotebookNode:
    """The one code cell whose source starts with `starts_with`."""
    found = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts_with)]
    assert len(found) == 1, f"{len(found)} cells start with {starts_with!r}"
    return found[0]


def text_of(code_cell: nbformat.NotebookNode) -> str:
    """Everything a reader sees as text in the cell: streams and the text/plain of every display."""
    text = ""
    for output in code_cell.outputs:
        if output.output_type == "stream":
            text += output.text  # a stream comes in pieces: they join as printed
        elif output.output_type == "error":
            text += f"{output.ename}: {output.evalue}\n"
        else:
            text += output.get("data", {}).get("text/plain", "") + "\n"
    return text


def reply_of(code_cell: nbformat.NotebookNode) -> dict:
    """The static copy a %%chat cell (or display_chat) leaves: its mime bundle."""
    static = [o.data for o in code_cell.outputs if o.output_type == "display_data" and TRANSCRIPT_MIME in o.data]
    assert len(static) == 1, [list(o.get("data", o)) for o in code_cell.outputs]
    return static[0]


def assert_no_errors(notebook: nbformat.NotebookNode) -> None:
    errors = [(c.source[:40], o.ename) for c in notebook.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors


def visible(notebook: nbformat.NotebookNode) -> list[list[tuple[str, str]]]:
    """Per code cell, what a reader sees: (output type, text) without run-to-run noise such as ids."""
    cells = []
    for code_cell in (c for c in notebook.cells if c.cell_type == "code"):
        shown: list[tuple[str, str]] = []
        for o in code_cell.outputs:
            if o.output_type == "stream" and shown and shown[-1][0] == f"stream:{o.name}":
                shown[-1] = (shown[-1][0], shown[-1][1] + o.text)  # how a stream was split is timing
            elif o.output_type == "stream":
                shown.append((f"stream:{o.name}", o.text))
            else:
                shown.append((o.output_type, o.get("data", {}).get("text/plain", o.get("evalue", ""))))
        cells.append(shown)
    return cells


def assert_committed_like(name: str, replayed: nbformat.NotebookNode) -> None:
    """The committed notebook shows what its cassette replays, with no widget state needed."""
    committed = nbformat.read(recorder.notebook_path(name), as_version=4)
    assert visible(committed) == visible(replayed)
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and all(recorder.WIDGET_VIEW not in o.get("data", {}) for o in outputs)
    assert "widgets" not in committed.metadata
    replies = [o.data for o in outputs if TRANSCRIPT_MIME in o.get("data", {})]
    assert all("<div class=\"agy-static" in r["text/html"] and "<script" not in r["text/html"] for r in replies)


# -- 1. Quickstart ---------------------------------------------------------------------------------------

def test_quickstart_notebook():
    notebook = run_from_cassette("01_quickstart")
    assert_no_errors(notebook)
    assert "Created agent 'assistant' on gemini-2.5-flash" in text_of(cell(notebook, "%agent create assistant"))

    first = reply_of(cell(notebook, "%%chat assistant\nWhat is the difference"))
    assert first["text/plain"].startswith("A **Series** is one labelled column")
    assert "<strong>Series</strong>" in first["text/html"]
    assert "<summary>Thoughts</summary>" in first["text/html"] and "Contrasting Series and DataFrame" in first["text/html"]
    assert first[TRANSCRIPT_MIME]["status"] == "done"
    follow_up = reply_of(cell(notebook, "%%chat assistant\nShow me how"))
    assert "s.to_frame()" in follow_up["text/plain"]

    assert "The reply is a str with 5 items:" in text_of(cell(notebook, "items = ["))
    usage = text_of(cell(notebook, "%agent usage"))
    assert "Usage of 'assistant' on gemini-2.5-flash" in usage
    assert [line.split() for line in usage.splitlines() if line.startswith("This agent")] == \
        [["This", "agent", "541", "342", "135", "0", "≈$0.0014"]]
    history = text_of(cell(notebook, "%agent history"))
    assert "You · turn 3:" in history and "turn 2" not in history and "Count missing values" in history
    assert "* assistant" in text_of(cell(notebook, "%agent list"))
    assert "system_instruction: You are a friendly" in text_of(cell(notebook, "%agent info"))
    assert_committed_like("01_quickstart", notebook)


# Notebook 1 with no credentials at all: the embedded model answers (CI installs the `local` extra).
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama_cpp is not importable: install the `local` extra to run the embedded model")
def test_quickstart_on_the_embedded_model(no_credentials):
    notebook = recorder.execute("01_quickstart", timeout=600)
    assert_no_errors(notebook)
    first = reply_of(cell(notebook, "%%chat assistant\nWhat is the difference"))
    assert first[TRANSCRIPT_MIME]["status"] == "done"
    assert first["text/plain"].split("\n[assistant")[0].strip()  # a non-empty streamed reply
    assert "This turn" in text_of(cell(notebook, "%agent usage"))


# -- 2. Tools and approval ---------------------------------------------------------------------------------

def test_tools_and_approval_notebook():
    notebook = run_from_cassette("02_tools_and_approval")
    assert_no_errors(notebook)
    assert text_of(cell(notebook, "from typing import Literal")) == "1.082\n"
    schema = text_of(cell(notebook, "decisions = []"))
    assert '"description": "the currency you have"' in schema and '"JPY"' in schema

    lookup = reply_of(cell(notebook, 'reply = await agy.display_chat(treasurer, "What is 250'))
    assert lookup["text/plain"].startswith('[tool exchange_rate: ok] {"base": "EUR", "quote": "USD"} -> {"result": 1.082}')
    assert "<strong>270.50 US dollars</strong>" in lookup["text/html"]
    email = reply_of(cell(notebook, 'reply = await agy.display_chat(treasurer, "Please email'))
    assert email["text/plain"].startswith('[tool send_email: ok] {"to": "team@example.com"')
    assert "The handler was asked: ['send_email to team@example.com']" in text_of(cell(notebook, 'print("The handler was asked:", decisions)\nprint'))

    both = reply_of(cell(notebook, 'reply = await agy.display_chat(treasurer, "Now send'))
    assert '[tool send_email: ok] {"to": "lena@example.com"' in both["text/plain"]
    assert '[tool send_email: denied] {"to": "bob@gmail.com"' in both["text/plain"]
    assert "the call was denied: only addresses at example.com may receive email" in both["text/html"]
    summary = text_of(cell(notebook, 'print("The handler was asked:", decisions)\nfor email'))
    assert summary.count("send_email to") == 1  # "always allow": the handler was not asked again
    assert "team@example.com | 250 EUR in USD\nlena@example.com | 250 EUR in GBP\n" in summary  # not bob
    assert [line.split()[-4:] for line in summary.splitlines() if "decided by" in line] == \
        [["ok", "decided", "by", "policy"]] * 2 + [["denied", "decided", "by", "policy"]]

    headless = reply_of(cell(notebook, "%%chat mailer"))
    assert headless["text/plain"].startswith("[tool send_email: denied]")
    assert "nobody can approve &#x27;send_email&#x27; here" in headless["text/html"] or \
        "nobody can approve 'send_email' here" in headless["text/html"]
    assert_committed_like("02_tools_and_approval", notebook)


# -- 3. Exploring a DataFrame ------------------------------------------------------------------------------

def test_dataframe_notebook():
    requests: list = []
    notebook = run_from_cassette("03_dataframe", requests)
    assert_no_errors(notebook)
    assert "2026-01-05  North   Basic  120.0" in text_of(cell(notebook, "%load_ext agy_jupyter\nimport pandas"))
    assert "Created agent 'analyst' on gemini-3-flash-preview" in text_of(cell(notebook, "%agent create analyst"))

    overview = reply_of(cell(notebook, "%%chat analyst\nI loaded"))
    plain = overview["text/plain"]
    assert plain.startswith('[tool list_variables: ok] {} -> {"result": "sales: pandas.DataFrame (shape 156x6)"}')
    assert '[tool inspect_variable: ok] {"name": "sales"}' in plain
    assert "units: float64, 4 null" in overview["text/html"]  # what inspect_variable told the model
    assert "<strong>Missing values:</strong>" in overview["text/html"]

    chart_cell = cell(notebook, "%%chat analyst -o findings")
    tool_part, answer = [o.data for o in chart_cell.outputs if TRANSCRIPT_MIME in o.get("data", {})]
    assert tool_part["text/plain"].startswith('[tool run_python: ok] {"code": "import matplotlib.pyplot as plt')
    figures = [o.data["image/png"] for o in chart_cell.outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 1 and base64.b64decode(figures[0]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "West drops to about 1,400 a week for all four weeks of April" in answer["text/plain"]
    # the model was sent the chart itself: an image part in run_python's function response
    sent = normalize_keys(requests[-1].body)["contents"][-1]["parts"][0]["functionResponse"]
    assert sent["name"] == "run_python" and sent["parts"][0]["inlineData"]["mimeType"] == "image/png"
    assert base64.urlsafe_b64decode(sent["parts"][0]["inlineData"]["data"]) == base64.b64decode(figures[0])

    assert "2026-06-29  6689.0  3558.0  3093.0" in text_of(cell(notebook, "weekly.tail()"))
    assert text_of(cell(notebook, "print(findings")) == "Here is the chart. What stands out:\n"
    assert_committed_like("03_dataframe", notebook)


# -- 4. Several agents ------------------------------------------------------------------------------------

def test_several_agents_notebook():
    notebook = run_from_cassette("04_several_agents")
    assert_no_errors(notebook)
    assert reply_of(cell(notebook, "%%chat researcher -o notes"))["text/plain"].startswith("- **Price:**")
    assert text_of(cell(notebook, "from agy_jupyter.agent.directory import agents")) == "False\n"  # no message yet
    handed_over = text_of(cell(notebook, "researcher.send(writer"))
    assert handed_over.startswith("message arrived: True\n") and "Why do customers leave?" in handed_over
    writer_history = text_of([c for c in notebook.cells if c.source == "%agent history writer"][0])
    assert "[message from agent researcher]" in writer_history and "- **Low usage:**" in writer_history

    assert "Sent to 'researcher'" in text_of(cell(notebook, "%agent send writer researcher"))
    answer = text_of(cell(notebook, "researcher.wait_for_idle()"))
    assert "[message from agent writer]\nWhich of your three reasons" in answer
    assert "Low usage has the strongest evidence" in answer

    assert "[writer: " in text_of(cell(notebook, "%%chat writer --background"))
    rows = text_of(cell(notebook, "import time")).splitlines()
    assert [row.split()[-1] for row in rows if "writer" in row] == ["streaming"]  # still answering meanwhile
    assert text_of(cell(notebook, "%agent cancel writer")) == "Cancelled the reply of 'writer'.\n"
    stopped = text_of(cell(notebook, "%agent history writer --last 1"))
    assert "Agent (cancelled):" in stopped
    partial = stopped.split("Agent (cancelled):\n", 1)[1].rstrip()
    post = recorder.load_replies("04_several_agents").POST
    assert partial.startswith("# Keeping customers") and post.startswith(partial) and len(partial) < len(post)
    assert_committed_like("04_several_agents", notebook)


# -- 5. The Python API ------------------------------------------------------------------------------------

def test_python_api_notebook():
    requests: list = []
    notebook = run_from_cassette("05_python_api", requests)
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["QuotaExhausted"]  # the one cell tagged raises-exception
    assert len(errors[0].traceback) == 1 and "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in errors[0].traceback[0]

    assert text_of(cell(notebook, "import agy_jupyter as agy")) == "<Agent 'assistant' id=1 model=gemini-2.5-flash>\n"
    blocking = text_of(cell(notebook, "reply = assistant.chat("))
    assert blocking.startswith("`groupby` splits a DataFrame into groups")
    assert "output_tokens=44 thinking_tokens=71" in blocking and blocking.endswith("STOP\n")
    streamed = cell(notebook, "for event in assistant.stream(\"Name three")
    assert len(streamed.outputs) > 1  # it arrived in pieces
    assert text_of(streamed) == ("- `isna()`: find the missing values\n- `dropna()`: remove rows or columns that "
                                 "contain them\n- `fillna()`: replace them with a value, or with the previous or next one\n\n")
    both = text_of(cell(notebook, "import asyncio"))
    assert "assistant:  Missing values matter" in both and "translator: Les valeurs manquantes" in both

    assert text_of(cell(notebook, "from typing import Literal")) == "DataReview | ready for analysis: False\n"
    issues = text_of(cell(notebook, "for issue in review.issues:"))
    assert [line.split("]")[0] + "]" for line in issues.splitlines() if line.startswith("[")] == \
        ["[  high]", "[  high]", "[medium]", "[medium]"]
    assert "country: 'de' and 'DE' are the same country" in issues
    review_request = next(r for r in requests if "Review this table" in r.last_user_text)
    config = normalize_keys(review_request.body)["generationConfig"]
    assert config["responseMimeType"] == "application/json" and "issues" in config["responseSchema"]["properties"]
    assert "customer_id" in json.dumps(review_request.contents)  # the DataFrame went along as a summary

    waited = text_of(cell(notebook, "for event in assistant.stream(\"One more"))
    assert waited.startswith("[rate limited: waiting 2 s, then trying again]\n`pivot_table` reshapes a DataFrame")
    caught = text_of(cell(notebook, "try:"))
    assert caught.startswith("Out of quota: quota exhausted") and "FreeTier - limit: 250" in caught
    assert_committed_like("05_python_api", notebook)
