"""Terminal IPython (no kernel) and plain scripts: every output is readable text, replies print as they stream.

These run a real `ipython` (TerminalInteractiveShell, simple prompt) and a real `python` in subprocesses,
against the fake Gemini server, and read what a user would see on stdout.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys


from agy_jupyter.testing import Reply, Usage

OBJECT_REPR = re.compile(r"<[\w.]+ object( at 0x[0-9a-f]+)?>")
# In the simple prompt a cell magic's body ends at two empty lines.
SESSION = """%load_ext agy_jupyter
%agent create t
def add(a: int, b: int) -> int:
    return a + b

%agent create calc --tools add
%%chat t -o said
hello


print(repr(said))
%agent usage t
%agent list
%agent info t
%%chat calc
add 1 and 2


%agent bogus
import agy_jupyter as agy
r = agy.display_chat_blocking('t', 'again')
print(type(r).__name__)
"""


def run_ipython(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor",
                           "--HistoryManager.enabled=False"], input=script, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_terminal_ipython_shows_text_not_object_reprs(fake):
    fake.enqueue(Reply.text("Hello from the terminal", chunks=3, usage=Usage(prompt=1000, output=50)),
                 Reply.function_call("add", {"a": 1, "b": 2}, id="c1"), Reply.text("I was not allowed."),
                 Reply.text("blocking twin speaks"))
    done = run_ipython(SESSION, fake.env())
    out = done.stdout
    assert not OBJECT_REPR.search(out) and "UsageView" not in out, out
    assert "Hello from the terminal" in out and "'Hello from the terminal'" in out  # printed, and -o stored it
    # %agent usage: the table, with costs and the context fill
    assert re.search(r"Scope\s+Prompt\s+Output\s+Thinking\s+Cached\s+Cost", out), out
    assert re.search(r"This turn\s+1,000\s+50\s+0\s+0\s+≈\$0\.0004", out), out
    assert "Context: 1,050 of 1,048,576 tokens (0.1% full)" in out
    assert re.search(r"\* t\s+gemini-2.5-flash\s+1\s+1,050 idle", out)  # %agent list
    assert "state: idle; turns: 1; tokens: 1,050" in out  # %agent info
    # a tool call under the default ask policy: nobody can click here, so it is denied, and says why
    assert "[tool add(a=1, b=2)]" in out and re.search(r"\[tool add → denied\] .*nobody can approve 'add'", out)
    assert "I was not allowed." in out
    assert "blocking twin speaks\n" in out and "ChatResponse" in out
    # a bad line: one UsageError message, no traceback
    assert "UsageError: invalid choice: 'bogus'" in done.stderr and "Traceback" not in done.stderr + out


def test_terminal_history_is_readable(fake):
    fake.enqueue(Reply.text("remember me"))
    done = run_ipython("%load_ext agy_jupyter\n%agent create t\n%%chat\nhello\n\n\n%agent history t\n", fake.env())
    assert not OBJECT_REPR.search(done.stdout), done.stdout
    assert done.stdout.count("remember me") == 2  # streamed once, and again in the history


SCRIPT = """
import asyncio
import agy_jupyter as agy
def add(a: int, b: int) -> int:
    \"\"\"Add.\"\"\"
    return a + b
agent = agy.Agent("scripted", tools=[add])
response = asyncio.run(agy.display_chat(agent, "add 2 and 3"))
print("\\n->", type(response).__name__, repr(response.text), response.tool_calls[0].status)
"""


def test_display_chat_in_a_plain_script_prints_as_it_streams(fake):
    fake.enqueue(Reply.function_call("add", {"a": 2, "b": 3}, id="c1"), Reply.text("No tools for me.", chunks=3))
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={**os.environ, **fake.env()}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No tools for me." in done.stdout and "[tool add → denied]" in done.stdout
    assert "-> ChatResponse 'No tools for me.' denied" in done.stdout
    assert "nobody can approve 'add'" in fake.requests[1].function_response("c1")["error"]
