"""Conversations saved as they happen and restored by name (agent/persistence.py over runtime/store.py).

A "new kernel" here is what a restarted process starts with: the old runtime is shut down and dropped, so
no agent of this process writes its conversation any more. The real restart and a SIGKILL mid-reply are
in test_persistence_kernel.py.
"""
from __future__ import annotations

import base64
import sqlite3
import threading
import warnings
from pathlib import Path

import pytest

import agy_jupyter as agy
from agy_jupyter.agent import persistence
from agy_jupyter.agent.directory import AgentDirectory
from agy_jupyter.agent.history import contents_for_model, history_is_valid, saved_form
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.runtime.store import FILE_NAME, SCHEMA, Store, open_store
from agy_jupyter.testing import Chunk, Reply, Usage

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
PLANTED_KEY = "AIzaSyPLANTED-persistence-key-0123456789"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A data directory of the test's own; no notebook unless a test names one."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("AGY_PERSIST", raising=False)
    return tmp_path


def first_text(stream) -> None:
    """Read the stream until the reply's first text arrived."""
    for event in stream:
        if isinstance(event, agy.TextDelta):
            return


def new_runtime() -> agy.Runtime:
    return agy.Runtime(agy.RuntimeConfig(chat_timeout=20, shutdown_timeout=5), quota=QuotaRegistry())


def end_of_kernel(*runtimes: agy.Runtime) -> None:
    """What a kernel restart does to this process's agents: stopped, and (a new process) none of them
    counts as writing its conversation any more. The test does not use the old agents afterwards."""
    for runtime in runtimes:
        runtime.shutdown()
    persistence._live.clear()


def store_rows(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        return db.execute("SELECT conversation, position, turn FROM messages ORDER BY conversation, position").fetchall()


def file_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob(f"{FILE_NAME}*"))


# -- round trip ---------------------------------------------------------------------------------------

def test_a_conversation_with_tools_thoughts_and_images_comes_back_as_it_was(fake, data_dir):
    first = new_runtime()
    agent = agy.Agent("analyst", runtime=first, tools=[add], policies=[agy.allow_all()], temperature=0.3,
                      system_instruction="Be brief.")
    fake.enqueue(Reply(chunks=[Chunk.thought("let me add", thought_signature=b"sig-1"),
                               Chunk.function_call("add", {"a": 2, "b": 3}, id="call-1", thought_signature=b"sig-2")],
                       usage=Usage(prompt=10, output=5, thoughts=2)),
                 Reply(chunks=[Chunk.text("It is 5.", thought_signature=b"sig-3")]),
                 Reply.text("A PNG."))
    agent.chat("What is 2 + 3?")
    agent.chat(["Describe this", agy.image(PNG)])
    original = [saved_form(m) for m in agent.history()]
    expected_next = contents_for_model(agent.history())
    tokens = agent.usage().total_tokens
    end_of_kernel(first)

    second = new_runtime()
    restored = agy.Agent.restore("analyst", tools=[add], runtime=second)
    assert [saved_form(m) for m in restored.history()] == original  # signatures, image bytes, usage, times
    assert restored.config.temperature == 0.3 and restored.config.system_instruction == "Be brief."
    assert [t.name for t in restored.config.tools] == ["add"] and restored.turn_count() == 2
    assert restored.usage().total_tokens == tokens
    fake.enqueue(Reply.text("Still 5."))
    restored.chat("And again?")
    sent = fake.requests[-1].contents
    assert [c["role"] for c in sent] == [c.role for c in expected_next] + ["user"]
    signatures = [base64.b64decode(p["thoughtSignature"]) for c in sent for p in c["parts"] if "thoughtSignature" in p]
    assert signatures == [b"sig-1", b"sig-2", b"sig-3"]
    assert base64.b64decode(sent[4]["parts"][1]["inlineData"]["data"]) == PNG
    second.shutdown()


def test_each_message_is_written_when_it_ends_not_before(fake, data_dir):
    runtime = new_runtime()
    agent = agy.Agent("slow", runtime=runtime)
    fake.enqueue(Reply.text("one two three four", chunks=4, delay=0.3))
    stream = agent.stream("count")
    first_text(stream)  # the reply is streaming
    assert [(position, turn) for _, position, turn in store_rows(data_dir)] == [(0, 1)]  # the prompt only
    stream.result()
    assert [(position, turn) for _, position, turn in store_rows(data_dir)] == [(0, 1), (1, 1)]
    runtime.shutdown()


def test_a_cancelled_reply_is_saved_with_its_status(fake, data_dir):
    first = new_runtime()
    agent = agy.Agent("stopped", runtime=first)
    fake.enqueue(Reply.text("partial answer that never ends", chunks=10).stall_after(2))
    stream = agent.stream("talk")
    first_text(stream)
    agent.cancel()
    kept = [(m.kind, m.status, m.text) for m in agent.history()]
    end_of_kernel(first)
    second = new_runtime()
    restored = agy.Agent.restore("stopped", runtime=second)
    assert [(m.kind, m.status, m.text) for m in restored.history()] == kept
    assert kept[1][:2] == ("reply", "cancelled") and kept[1][2]
    second.shutdown()


def test_compaction_restores_its_summary_and_exclusions(fake, data_dir):
    first = new_runtime()
    agent = agy.Agent("long", runtime=first, compaction_threshold=100, compaction_keep_turns=1)
    fake.enqueue(Reply.text("a1", usage=Usage(prompt=40, output=10)),
                 Reply.text("a2", usage=Usage(prompt=90, output=30)),
                 Reply.text("SUMMARY: q1 was asked"))
    agent.chat("q1")
    agent.chat("q2")  # turn 1 is summarised: a summary message is inserted before turn 2
    history = agent.history()
    assert [m.kind for m in history] == ["prompt", "reply", "summary", "prompt", "reply"]
    expected = [(m.kind, m.excluded, m.text) for m in history]
    indices = agent.compaction_indices()
    end_of_kernel(first)

    second = new_runtime()
    restored = agy.Agent.restore("long", runtime=second)
    assert [(m.kind, m.excluded, m.text) for m in restored.history()] == expected
    assert restored.compaction_indices() == indices
    fake.enqueue(Reply.text("a3", usage=Usage(prompt=20, output=5)))
    restored.chat("q3")
    sent = fake.requests[-1].contents
    assert "SUMMARY: q1" in sent[0]["parts"][0]["text"] and "q1" not in str(sent[0]["parts"][1:])
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    second.shutdown()


def test_a_turn_cut_off_mid_tool_call_is_repaired_when_restored(fake, data_dir):
    """What a kernel killed while a tool runs leaves in the store: the call saved, no result, no turn end."""
    release = threading.Event()

    def slow(x: int) -> int:
        """Wait, then return x."""
        release.wait(10)
        return x

    runtime = new_runtime()
    agent = agy.Agent("cut", runtime=runtime, tools=[slow], policies=[agy.allow_all()])
    fake.enqueue(Reply.text("first"), Reply.function_call("slow", {"x": 1}, id="c1"), Reply.text("never"))
    agent.chat("warm up")
    stream = agent.stream("call slow")
    for event in stream:
        if type(event).__name__ == "ToolCallStarted":
            break
    [row] = open_store().conversations(agent="cut")
    saved = [agy.Message.model_validate_json(d) for d in open_store().messages(row.id)]
    assert row.finished_turn == 1 and [m.kind for m in saved] == ["prompt", "reply", "prompt", "reply"]
    fixed = persistence.repaired(saved, row.finished_turn)
    assert [(m.kind, m.status) for m in fixed[2:]] == [("prompt", "complete"), ("reply", "error"),
                                                       ("tool_results", "error")]
    assert fixed[-1].function_responses[0].response == persistence.INTERRUPTED_RESULT
    assert history_is_valid(contents_for_model(fixed))
    release.set()
    stream.result()
    runtime.shutdown()


def test_an_unanswered_prompt_of_a_cut_off_turn_is_left_out_of_the_context(fake, data_dir):
    runtime = new_runtime()
    agent = agy.Agent("lost", runtime=runtime)
    fake.enqueue(Reply.text("first"), Reply.text("x", chunks=5).stall_after(1))
    agent.chat("one")
    stream = agent.stream("two")
    first_text(stream)
    [row] = open_store().conversations(agent="lost")
    saved = persistence.repaired([agy.Message.model_validate_json(d) for d in open_store().messages(row.id)],
                                 row.finished_turn)
    assert [(m.text, m.excluded, m.status) for m in saved] == [("one", False, "complete"),
                                                               ("first", False, "complete"), ("two", True, "error")]
    agent.cancel()
    runtime.shutdown()


def test_a_runtime_restart_goes_on_in_the_same_conversation(fake, data_dir, runtime):
    agent = agy.Agent("steady", runtime=runtime)
    agent.chat("one")
    runtime.restart()
    agent.chat("two")
    [row] = open_store().conversations(agent="steady")
    assert row.messages == 4 and row.finished_turn == 2


# -- finding, listing, missing tools -------------------------------------------------------------------

def test_missing_tools_are_named_and_left_out(fake, data_dir):
    first = new_runtime()
    agy.Agent("tooled", runtime=first, tools=[add], policies=[agy.allow_all()]).chat("hi")
    end_of_kernel(first)
    second = new_runtime()
    with pytest.warns(UserWarning, match="Tools not found, left out: add"):
        restored = agy.Agent.restore("tooled", tools={}, runtime=second)
    assert restored.config.tools == [] and len(restored.history()) == 2
    second.shutdown()


def test_tools_are_found_by_name_in_a_namespace(fake, data_dir):
    def add_too(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    renamed = agy.tool(add_too, name="plus")
    first = new_runtime()
    agy.Agent("ns", runtime=first, tools=[add, renamed], policies=[agy.allow_all()]).chat("hi")
    end_of_kernel(first)
    second = new_runtime()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = agy.Agent.restore("ns", tools={"add": add, "my_plus": renamed, "other": 3}, runtime=second)
    assert [t.name for t in restored.config.tools] == ["add", "plus"]
    second.shutdown()


def test_saved_conversations_by_notebook_and_the_ambiguous_restore(fake, data_dir, monkeypatch):
    for notebook in ("/work/a.ipynb", "/work/b.ipynb"):
        monkeypatch.setenv("JPY_SESSION_NAME", notebook)
        runtime = new_runtime()
        agy.Agent("twin", runtime=runtime).chat(f"hello from {notebook}")
        end_of_kernel(runtime)
    saved = agy.saved_conversations()
    assert sorted((c.agent, c.notebook, c.messages, c.turns) for c in saved) == [
        ("twin", "/work/a.ipynb", 2, 1), ("twin", "/work/b.ipynb", 2, 1)]
    runtime = new_runtime()
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/b.ipynb")
    here = agy.Agent.restore("twin", runtime=runtime)
    assert here.history()[0].text == "hello from /work/b.ipynb"
    assert {c.notebook for c in agy.saved_conversations() if c.in_use} == {"/work/b.ipynb"}
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/c.ipynb")
    with pytest.raises(agy.ConfigError, match="in use|live agent"):
        agy.Agent.restore("twin", notebook="/work/b.ipynb", runtime=runtime)
    elsewhere = agy.Agent.restore("twin", notebook="/work/a.ipynb", as_name="from_a", runtime=runtime)
    assert elsewhere.history()[0].text == "hello from /work/a.ipynb"
    assert any(c.notebook == "/work/a.ipynb" and not c.in_use for c in agy.saved_conversations())  # a copy
    with pytest.raises(agy.ConfigError, match="no saved conversation named 'nobody'"):
        agy.Agent.restore("nobody", runtime=runtime)
    runtime.shutdown()


def test_restore_in_the_same_notebook_replaces_the_saved_conversation(fake, data_dir):
    first = new_runtime()
    agy.Agent("once", runtime=first).chat("hi")
    end_of_kernel(first)
    second = new_runtime()
    agy.Agent.restore("once", runtime=second).chat("again")
    [row] = open_store().conversations(agent="once")
    assert (row.messages, row.finished_turn) == (4, 2)
    second.shutdown()


# -- clear, delete, forget, off ---------------------------------------------------------------------

def test_clear_deletes_the_saved_messages_and_later_ones_start_afresh(fake, data_dir, runtime):
    agent = agy.Agent("clean", runtime=runtime)
    agent.chat("secret plans")
    agent.clear()
    assert open_store().conversations(agent="clean") == [] and b"secret plans" not in file_bytes(data_dir)
    agent.chat("new topic")
    [row] = open_store().conversations(agent="clean")
    assert row.messages == 2


def test_deleting_an_agent_deletes_its_saved_conversation(fake, data_dir, runtime):
    directory = AgentDirectory(runtime)
    directory.create("gone").chat("hello")
    assert len(open_store().conversations(agent="gone")) == 1
    directory.delete("gone")
    assert open_store().conversations(agent="gone") == []


def test_forget_deletes_the_text_from_the_files_and_a_live_agent_stops_saving(fake, data_dir, runtime):
    agent = agy.Agent("private", runtime=runtime)
    agent.chat("my password is hunter2-forget-me")
    assert b"hunter2-forget-me" in file_bytes(data_dir)
    assert agy.forget_conversation("private") == 1
    assert agy.saved_conversations() == []
    assert b"hunter2-forget-me" not in file_bytes(data_dir)  # zeroed pages, truncated WAL
    agent.chat("and more")
    assert agy.saved_conversations() == []
    with pytest.raises(agy.ConfigError, match="say which"):
        agy.forget_conversation()


def test_forget_by_notebook_and_by_id(fake, data_dir, monkeypatch):
    for notebook in ("/w/a.ipynb", "/w/b.ipynb", "/w/b.ipynb"):
        monkeypatch.setenv("JPY_SESSION_NAME", notebook)
        runtime = new_runtime()
        agy.Agent("x", runtime=runtime).chat("hi")
        end_of_kernel(runtime)
    monkeypatch.setenv("JPY_SESSION_NAME", "/w/a.ipynb")
    oldest_b = min(c.id for c in agy.saved_conversations() if c.notebook == "/w/b.ipynb")
    assert agy.forget_conversation(conversation=oldest_b) == 1
    assert agy.forget_conversation("x") == 1  # this notebook's only
    assert [c.notebook for c in agy.saved_conversations()] == ["/w/b.ipynb"]
    assert agy.forget_conversation("x", all_notebooks=True) == 1 and agy.saved_conversations() == []


def test_the_off_switch_writes_nothing_and_works_at_once(fake, data_dir, monkeypatch, runtime):
    monkeypatch.setenv("AGY_PERSIST", "0")
    agent = agy.Agent("quiet", runtime=runtime)
    agent.chat("not saved")
    assert not (data_dir / FILE_NAME).exists()
    monkeypatch.setenv("AGY_PERSIST", "1")
    agent.chat("saved")
    monkeypatch.setenv("AGY_PERSIST", "off")
    agent.chat("not saved either")
    [row] = open_store().conversations(agent="quiet")
    assert row.messages == 4  # the history up to the second turn, written once persistence was on


def test_the_key_is_never_in_the_store(fake, data_dir, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", PLANTED_KEY)

    def leak() -> str:
        """Return the environment's key (a tool that echoes a secret)."""
        return f"key={PLANTED_KEY}"

    runtime = new_runtime()
    agent = agy.Agent("keyed", runtime=runtime, api_key=PLANTED_KEY, tools=[leak], policies=[agy.allow_all()])
    fake.enqueue(Reply.function_call("leak", {}, id="k1"), Reply.text(f"the key is {PLANTED_KEY}"))
    agent.chat(f"remember {PLANTED_KEY}")
    assert fake.requests[0].api_key == PLANTED_KEY  # it was in use
    end_of_kernel(runtime)
    data = file_bytes(data_dir)
    assert data and b"[redacted key]" in data
    assert PLANTED_KEY.encode() not in data and b"PLANTED-persistence" not in data


# -- the store ------------------------------------------------------------------------------------

def test_the_store_is_versioned_and_refuses_a_newer_file(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    assert store.schema_version == len(SCHEMA)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        db.execute(f"PRAGMA user_version = {len(SCHEMA) + 1}")
    with pytest.raises(agy.ConfigError, match="newer agy_jupyter"):
        Store(tmp_path / "s.sqlite3")


def test_writers_on_several_threads_and_a_reader_share_one_store(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    conversations = [store.create_conversation("nb", f"agent{i}", "{}") for i in range(4)]

    def write(conversation: int) -> None:
        for position in range(50):
            store.save_messages(conversation, [(position, position, '{"x": 1}')], finished_turn=position)

    threads = [threading.Thread(target=write, args=(c,)) for c in conversations]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        assert all(r.messages <= 50 for r in store.conversations())
    assert sorted((r.agent, r.messages, r.finished_turn) for r in store.conversations()) == [
        (f"agent{i}", 50, 49) for i in range(4)]
