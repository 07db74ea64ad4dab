"""The API key appears nowhere: a recognisable fake key is planted, a session runs through every surface a
user sees or keeps, and each is searched for it.

Surfaces: every iopub message of a real kernel, `%agent history`, an agent saved with `%agent save`,
`%agent info` / `list` / `usage`, the error a failed reply shows, the kernel's log at DEBUG level (every
logger, the SDK's and the HTTP client's included, and warnings routed into it), the conversation store
(the SQLite file and its WAL), a cassette recorded in the same kernel, and a notebook executed by nbclient
and saved. The fake server plays an API that echoes the key in an error message, as a real service
quoting its request could.
"""
from __future__ import annotations

import json
import logging

import pytest

import agy_jupyter as agy
from agy_jupyter.runtime import secrets
from agy_jupyter.testing import FakeGemini, Reply
from agy_jupyter.testing.kernel import loaded_kernel

CANARY = "AIzaSy-CANARY-agy-0123456789abcdef"  # shaped like a Gemini API key
TOOL = '''
def lookup(city: str) -> str:
    """The weather in a city."""
    return "sunny in " + city
'''


@pytest.fixture(scope="module")
def server():
    with FakeGemini(api_key=CANARY) as fake:
        yield fake


def test_an_error_that_quotes_the_key_is_shown_without_it():
    secrets.remember(CANARY)
    error = agy.BackendError(400, f"INVALID_ARGUMENT: API key not valid: {CANARY}")
    assert CANARY not in str(error) and secrets.REDACTED in str(error) and CANARY not in error.message


def test_log_records_of_any_logger_are_redacted(caplog):
    secrets.remember(CANARY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").debug("HTTP Request: POST http://h/v1?key=%s", CANARY)
        try:
            raise ValueError(f"echoed {CANARY}")
        except ValueError:
            logging.getLogger("some.library").exception("it failed")
    text = caplog.text
    assert "key=" + secrets.REDACTED in text and "ValueError: echoed" in text and CANARY not in text


def test_short_values_are_not_secrets():
    secrets.remember("x")
    assert secrets.redact("six x") == "six x"


def test_the_key_appears_in_no_output_export_or_log_of_a_session(server, tmp_path):
    server.reset()
    log_file = tmp_path / "kernel.log"
    saved = tmp_path / "saved_agent.json"
    data_dir = tmp_path / "jupyter-data"  # the kernel's own conversation store
    cassette = tmp_path / "session.json"
    with loaded_kernel({**server.env(), "JUPYTER_DATA_DIR": str(data_dir), "AGY_PERSIST": "1"}) as kernel:
        assert server.env()["GEMINI_API_KEY"] == CANARY  # the kernel really uses the canary
        kernel.run("import logging\n"
                   f"logging.basicConfig(filename={str(log_file)!r}, level=logging.DEBUG, force=True)\n"
                   "logging.captureWarnings(True)\n" + TOOL)
        server.enqueue(Reply.function_call("lookup", {"city": "Oslo"}, id="c1"), Reply.text("It is sunny."),
                       Reply.error(400, message=f"API key not valid: {CANARY}. Please pass a valid API key."),
                       Reply.text("Recorded."))  # the cassette's turn
        runs = [kernel.execute(code) for code in (
            "%agent create keeper --tools lookup --policy allow",
            "%%chat keeper\nWeather in Oslo?",
            "%%chat keeper\nAnd tomorrow?",  # the API's error quotes the key
            "%agent history keeper",
            "%agent info keeper",
            "%agent list",
            "%agent usage keeper",
            f"%agent save keeper {saved}",
            "from agy_jupyter.notebook.chat import current_directory\nkeeper = current_directory().get('keeper')\n"
            "print(repr(keeper), keeper.config, keeper.runtime)",
            # a cassette recorded through the proxy, against the same server
            "import os, agy_jupyter as agy\nfrom agy_jupyter.testing import record\n"
            f"with record({str(cassette)!r}, upstream=os.environ['GOOGLE_GEMINI_BASE_URL']):\n"
            "    print(agy.Agent('taped').chat('Record me').text)",
        )]
        assert [run.errors() for run in runs if run is not runs[2]] == [[]] * (len(runs) - 1)
        assert "Recorded." in runs[-1].text()
        assert "sunny" in json.dumps(runs[1].cell_outputs())
        assert [e["ename"] for e in runs[2].errors()] == ["BackendError"]
        assert "API key not valid" in json.dumps(runs[2].cell_outputs())  # the error is shown ...
        iopub = json.dumps([message for _, _, message in kernel.iopub_log], default=str)
    assert secrets.REDACTED in iopub  # ... with the key redacted
    assert CANARY not in iopub
    assert CANARY not in saved.read_text()
    log = log_file.read_text()
    assert "POST" in log or "HTTP" in log or "agy" in log, "the log recorded the session"
    assert CANARY not in log
    store_files = list(data_dir.glob("agy_jupyter.sqlite3*"))
    store_bytes = b"".join(path.read_bytes() for path in store_files)
    assert b"Weather in Oslo?" in store_bytes, "the conversation was saved"
    assert CANARY.encode() not in store_bytes
    tape = cassette.read_text()
    assert "Record me" in tape and "Recorded." in tape and CANARY not in tape
    # the server did receive it: the key went where it belongs, and only there
    assert server.requests and all(r.api_key == CANARY for r in server.requests)


def test_a_notebook_executed_and_saved_holds_no_key(server, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    server.reset()
    server.enqueue(Reply.text("Saved reply."))
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext agy_jupyter"),
        nbformat.v4.new_code_cell("%agent create saver"),
        nbformat.v4.new_code_cell("%%chat saver\nSay something"),
        nbformat.v4.new_code_cell("%agent info saver\n%agent usage saver"),
    ])
    for name, value in server.env().items():  # nbclient's kernel inherits this environment
        monkeypatch.setenv(name, value)
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    text = path.read_text()
    assert "Saved reply." in text and CANARY not in text
