"""The %agent subcommands and %%chat without a kernel (terminal IPython), in-process."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
from types import SimpleNamespace

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from agy_jupyter.agent.directory import AgentDirectory
from agy_jupyter.notebook import chat
from agy_jupyter.notebook.chat import until_finished
from agy_jupyter.notebook.interpolate import interpolate
from agy_jupyter.notebook.magics import AgyMagics
from agy_jupyter.notebook.usage import session_usage, usage_report, usage_text
from agy_jupyter.testing import Reply


@pytest.fixture
def shell(runtime):
    ip = InteractiveShell.instance()
    magics = AgyMagics(shell=ip, directory=AgentDirectory(runtime))
    ip.register_magics(magics)
    ip.reset(new_session=False)  # an empty namespace that keeps IPython's own names (_oh, In, Out, ...)
    yield ip
    for name in magics.directory.names():
        magics.directory.delete(name)


def directory(shell) -> AgentDirectory:
    return shell.magics_manager.registry["AgyMagics"].directory


def agent_magic(shell, line):
    return shell.run_line_magic("agent", line)


def test_create_with_options_and_the_first_is_the_default(shell, capsys):
    shell.user_ns["persona"] = "You are terse."
    shell.user_ns["add"] = lambda a, b: a + b
    shell.user_ns["add"].__name__ = "add"
    agent_magic(shell, "create first --model gemini-2.5-pro --system-var persona --temperature 0.2 "
                       "--max-output-tokens 100 --thinking-budget 0 --policy allow --tools add")
    agent_magic(shell, "create second")
    assert "Created agent 'first' on gemini-2.5-pro; it is the default agent." in capsys.readouterr().out
    first = directory(shell).get("first")
    config = first.config
    assert (config.model, config.system_instruction, config.temperature, config.max_output_tokens,
            config.thinking_budget, config.default_policy.value) == (
        "gemini-2.5-pro", "You are terse.", 0.2, 100, 0, "allow")
    assert [t.name for t in config.tools] == ["add"]
    assert directory(shell).get().name == "first"
    agent_magic(shell, "use second")
    assert directory(shell).get().name == "second"
    agent_magic(shell, "create third --use")
    assert directory(shell).default_name == "third"


def test_list_info_history_clear_delete(shell, fake, capsys):
    agent_magic(shell, "create alpha --system 'Be kind'")
    fake.enqueue(Reply.text("Hi there!"))
    directory(shell).get("alpha").chat("hello <b>you</b>")
    agent_magic(shell, "list")
    agent_magic(shell, "info alpha")
    out = capsys.readouterr().out
    assert "alpha" in out and "gemini-2.5-flash" in out and "turns: 1" in out and "Be kind" in out
    fake.enqueue(Reply.text("Second answer"))
    directory(shell).get("alpha").chat("again")
    with capture_output() as captured:
        agent_magic(shell, "history alpha")
        agent_magic(shell, "history alpha --last 1")
    full, last = (output.data for output in captured.outputs)
    assert "<p>Hi there!</p>" in full["text/html"] and "&lt;b&gt;you&lt;/b&gt;" in full["text/html"]  # not as HTML
    assert "Hi there!" in full["text/plain"] and "hello <b>you</b>" in full["text/plain"]  # a terminal reads this
    assert set(full) == {"text/html", "text/plain"}
    assert "Second answer" in last["text/plain"] and "Hi there!" not in last["text/html"] + last["text/plain"]
    agent_magic(shell, "clear alpha")
    assert directory(shell).get("alpha").history() == []
    agent_magic(shell, "delete alpha")
    assert "alpha" not in directory(shell)


def test_save_and_load_round_trip_without_the_key(shell, fake, tmp_path):
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    shell.user_ns["lookup"] = lookup
    agent_magic(shell, "create saver --tools lookup --policy allow")
    fake.enqueue(Reply.text("remembered"))
    directory(shell).get("saver").chat("remember this")
    path = tmp_path / "saver.json"
    agent_magic(shell, f"save saver {path}")
    text = path.read_text()
    assert fake.env()["GEMINI_API_KEY"] not in text and "api_key" not in text
    agent_magic(shell, f"load {path} --name restored --tools lookup")
    restored = directory(shell).get("restored")
    assert [m.text for m in restored.history()] == ["remember this", "remembered"]
    assert restored.turn_count() == 1 and [t.name for t in restored.config.tools] == ["lookup"]
    fake.enqueue(Reply.text("yes"))
    restored.chat("do you remember?")
    assert "remember this" in json.dumps(fake.requests[-1].contents)
    with pytest.raises(UsageError, match="lookup"):
        agent_magic(shell, f"load {path} --name again")  # the tool it needs was not passed


def test_send_delivers_a_signed_message(shell, fake, capsys):
    agent_magic(shell, "create boss")
    agent_magic(shell, "create worker")
    fake.enqueue(Reply.text("on it"))
    agent_magic(shell, "send boss worker please summarise the data")
    assert "Sent to 'worker'" in capsys.readouterr().out
    worker = directory(shell).get("worker")
    worker.wait_for_idle()
    assert "[message from agent boss]" in json.dumps(fake.requests[-1].contents)
    assert "please summarise the data" in fake.requests[-1].last_user_text
    assert worker.last_response() == "on it"


def test_usage_view_has_rows_costs_and_context(shell, fake):
    agent_magic(shell, "create counter")
    from agy_jupyter.testing import Usage
    fake.enqueue(Reply.text("ok", usage=Usage(prompt=1000, output=500)))
    directory(shell).get("counter").chat("count")
    view = agent_magic(shell, "usage counter")
    rows = {row["scope"]: row for row in view.data["rows"]}
    assert rows["This turn"]["prompt"] == 1000 and rows["This agent"]["output"] == 500
    assert rows["This turn"]["cost"] == pytest.approx((1000 * 0.30 + 500 * 2.50) / 1e6)
    assert view.data["context"]["limit"] == 1_048_576 and view.data["context"]["used"] == 1500
    assert "estimates" in view.data["note"]


def test_config_never_shows_the_key(shell, fake, capsys):
    agent_magic(shell, "config")
    out = capsys.readouterr().out
    assert "backend: gemini" in out and "AgyMagics.approval_timeout" in out
    assert fake.env()["GEMINI_API_KEY"] not in out


@pytest.mark.parametrize("line, message", [
    ("", "say what to do"), ("frobnicate", "invalid choice"), ("create", "required: name"),
    ("use ghost", "no agent 'ghost'"), ("create x --temperature warm", "invalid float value"),
    ("create x --temperature 9", "temperature"), ("create x --tools not_there", "not a callable"),
    ("send a", "required"), ("create x --policy maybe", "invalid choice"),
])
def test_bad_lines_raise_one_usage_error(shell, line, message):
    with pytest.raises(UsageError) as caught:
        agent_magic(shell, line)
    assert message in str(caught.value) and "usage: %agent" in str(caught.value)


def test_chat_without_a_kernel_prints_as_it_streams(shell, fake, capsys):
    agent_magic(shell, "create talker")
    fake.enqueue(Reply.text("streamed words arrive", chunks=3))
    shell.run_cell_magic("chat", "-o said", "hello")
    assert "streamed words arrive" in capsys.readouterr().out
    assert shell.user_ns["said"] == "streamed words arrive"
    with pytest.raises(UsageError, match="--background needs a Jupyter kernel"):
        shell.run_cell_magic("chat", "--background", "hello")
    with pytest.raises(UsageError, match="empty"):
        shell.run_cell_magic("chat", "", "   \n")


def test_chat_interpolates_only_names_in_the_namespace(shell, fake):
    agent_magic(shell, "create reader")
    shell.user_ns["df"] = pd.DataFrame({"price": range(500)})
    shell.user_ns["city"] = "Oslo"
    fake.enqueue(Reply.text("ok"))
    shell.run_cell_magic("chat", "-i", 'In {city}: {df} and {"json": {missing}} {_private}')
    sent = fake.requests[-1].last_user_text
    assert sent.startswith("In Oslo: DataFrame: 500 rows x 1 columns")
    assert '{"json": {missing}} {_private}' in sent and "499" not in sent


def test_interpolate_leaves_every_other_brace_alone():
    assert interpolate("f'{x:>3}' {y} {{z}} {1}", {"y": 7, "z": "Z"}) == "f'{x:>3}' 7 {Z} {1}"


def test_cancel_all_stops_every_running_reply(shell, fake, capsys):
    agent_magic(shell, "create one")
    agent_magic(shell, "create two")
    fake.enqueue(Reply.text("a b", chunks=2).stall_after(1), Reply.text("c d", chunks=2).stall_after(1))
    streams = [directory(shell).get(name).stream("stall") for name in ("one", "two")]
    assert fake.wait_for_requests(2, timeout=5)
    agent_magic(shell, "cancel --all")
    assert "Cancelled 2 running replies." in capsys.readouterr().out
    assert all(stream.result(timeout=5).cancelled for stream in streams)
    agent_magic(shell, "cancel one")
    assert "'one' was not answering" in capsys.readouterr().out


# -- parsing: IPython's magic_arguments, help with examples -------------------------------------------

def test_every_magic_line_is_parsed_by_magic_arguments():
    from IPython.core.magic_arguments import MagicArgumentParser

    from agy_jupyter.notebook.magics import SUBCOMMANDS
    assert isinstance(AgyMagics.chat.parser, MagicArgumentParser)
    assert set(SUBCOMMANDS) >= {"create", "list", "use", "info", "history", "usage", "clear", "cancel", "delete",
                                "save", "load", "send", "config"}
    assert all(isinstance(handler.parser, MagicArgumentParser) for handler in SUBCOMMANDS.values())
    help_text = AgyMagics.agent.__doc__
    assert "Examples:" in help_text and "usage: %agent create" in help_text
    assert "  usage    token usage, estimated cost and context fill" in help_text  # one line per subcommand
    assert "Examples:" in AgyMagics.chat.__doc__ and "usage: %%chat" in AgyMagics.chat.__doc__


@pytest.mark.parametrize("line, cell, message", [
    ("'unbalanced", "hi", "No closing quotation"), ("--nope", "hi", "unrecognized arguments: --nope"),
    ("-o 1x", "hi", "-o needs a variable name"), ("ghost", "hi", "no agent 'ghost'"),
])
def test_bad_chat_lines_raise_one_usage_error(shell, line, cell, message):
    agent_magic(shell, "create someone")
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("chat", line, cell)
    assert message in str(caught.value) and "usage: %%chat" in str(caught.value)


def test_system_and_system_var_together_is_a_usage_error(shell):
    shell.user_ns["persona"] = "terse"
    with pytest.raises(UsageError, match="--system or --system-var, not both"):
        agent_magic(shell, "create x --system hi --system-var persona")


# -- display_chat's pieces ---------------------------------------------------------------------------

async def test_until_finished_lets_a_cancel_through_and_leaves_the_reply_alone():
    live = SimpleNamespace(finished=concurrent.futures.Future())  # a LiveReply's "static copy written" future
    waiter = asyncio.ensure_future(until_finished(live))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter  # a second interrupt while the static copy is written is not swallowed
    assert not live.finished.cancelled()  # the reply can still set it when its static copy is out


async def test_until_finished_gives_up_after_finish_wait_without_cancelling_the_reply(monkeypatch):
    monkeypatch.setattr(chat, "FINISH_WAIT", 0.05)
    live = SimpleNamespace(finished=concurrent.futures.Future())
    await until_finished(live)
    assert not live.finished.cancelled()
    live.finished.set_result(None)  # what LiveReply does later: must not raise InvalidStateError


def test_usage_report_covers_the_turn_the_agent_the_session_and_the_context(shell, fake):
    from agy_jupyter.testing import Usage as FakeUsage
    agent_magic(shell, "create first")
    agent_magic(shell, "create second")
    fake.enqueue(Reply.text("a", usage=FakeUsage(prompt=100, output=10)), Reply.text("b", usage=FakeUsage(prompt=300, output=30)),
                 Reply.text("c", usage=FakeUsage(prompt=1000, output=5)))
    first, second = directory(shell).get("first"), directory(shell).get("second")
    first.chat("one")
    first.chat("two")
    second.chat("three")
    assert session_usage(directory(shell)).prompt_tokens == 1400
    report = usage_report(first, directory(shell))
    rows = {row["scope"]: (row["prompt"], row["output"]) for row in report["rows"]}
    assert rows == {"This turn": (300, 30), "This agent": (400, 40), "Session": (1400, 45)}
    assert report["context"]["used"] == 330 and report["agent"] == "first"
    text = usage_text(report)
    assert re.search(r"Session\s+1,400\s+45", text) and "Context: 330 of 1,048,576 tokens" in text


def test_quoted_arguments_lose_their_quotes(shell):
    """Shell quoting as typed: the quotes delimit the value, they are not part of it."""
    agent_magic(shell, 'create q --system "Be kind, always"')
    agent_magic(shell, "create r --system 'Be terse' --model \"gemini-2.5-pro\"")
    assert directory(shell).get("q").config.system_instruction == "Be kind, always"
    assert (directory(shell).get("r").config.system_instruction, directory(shell).get("r").config.model) == (
        "Be terse", "gemini-2.5-pro")


def test_list_escapes_what_the_user_typed(shell):
    """A model name is the user's text, not markup: the table shows it, the page never parses it."""
    agent_magic(shell, "create odd --model 'gemini<img src=x onerror=alert(1)>'")
    with capture_output() as captured:
        agent_magic(shell, "list")
    html = captured.outputs[0].data["text/html"]
    assert "<img" not in html and "gemini&lt;img src=x onerror=alert(1)&gt;" in html


def test_info_lists_stuck_tool_calls(shell, capsys, fake):
    release = threading.Event()

    def slow_query(n: int) -> str:
        """Hangs until released."""
        release.wait(30)
        return "late"

    # created from Python for the short tool timeout the magic does not offer; %agent info reads it all the same
    agent = directory(shell).create("stuck", tools=[slow_query], default_policy="allow", tool_timeout=0.2)
    try:
        fake.enqueue(Reply.function_call("slow_query", {"n": 1}, id="c1"), Reply.text("gave up"))
        agent.chat("query")
        agent_magic(shell, "info stuck")
        assert re.search(r"stuck tool calls \(1\): slow_query \(\d+ s\)", capsys.readouterr().out)
    finally:
        release.set()


def test_help_flags_print_the_help_instead_of_failing(shell, capsys):
    agent_magic(shell, "--help")
    assert "subcommands:" in capsys.readouterr().out
    agent_magic(shell, "create -h")
    out = capsys.readouterr().out
    assert out.startswith("usage: %agent create") and "--policy" in out
    shell.run_cell_magic("chat", "--help", "x")
    assert "Examples:" in capsys.readouterr().out


def test_create_with_builtin_tools_and_a_workspace(shell, fake, tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    agent_magic(shell, f"create coder --builtin files,run_command --workspace {tmp_path} --policy allow")
    agent = directory(shell).get("coder")
    assert agent.config.workspace == str(tmp_path.resolve())
    fake.enqueue(Reply.function_call("view_file", {"path": "data.csv"}, id="v"), Reply.text("Two columns."))
    agent.chat("what is in data.csv?")
    declared = [d["name"] for t in fake.requests[0].tools for d in t.get("functionDeclarations", [])]
    assert declared == ["view_file", "list_dir", "find_files", "grep_search", "write_file", "edit_file",
                        "run_command"]
    assert "     2\t1,2" in fake.requests[1].function_response("v")["result"]


@pytest.mark.parametrize("line, message", [
    ("create x --builtin files,fils", "--builtin: unknown builtin tool or group 'fils' (groups: notebook, files, "
                                      "shell; tools: list_variables,"),
    ("create x --builtin files --workspace /no/such/dir", "--workspace: '/no/such/dir' is not a directory"),
])
def test_bad_builtin_options_are_one_usage_error(shell, line, message):
    with pytest.raises(UsageError) as caught:
        agent_magic(shell, line)
    first, usage = str(caught.value).split("\n", 1)
    assert message in first and usage.startswith("usage: %agent create")
    assert "x" not in directory(shell).names()
