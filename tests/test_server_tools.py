"""Gemini's server-side tools (google_search, url_context, code_execution) through the real google-genai
client against FakeGemini: the request, the events and transcript of the reply, the history."""
from __future__ import annotations

import json
import re

import pytest

from agy_jupyter.agent.config import build_config
from agy_jupyter.agent.events import Citations, CodeExecuted, CodeExecutionStarted, TextDelta
from agy_jupyter.notebook.transcript import TRANSCRIPT_MIME, Transcript, history_bundle
from agy_jupyter.runtime.errors import ConfigError
from agy_jupyter.testing import Chunk, Reply

SOURCES = [("Gauss <b>sum</b>", "https://example.org/gauss?a=1&b=2"), ("Evil", "javascript:alert(1)")]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def run(agent, prompt: str):
    """Chat through the stream, keeping every event the turn emitted."""
    stream = agent.stream(prompt)
    seen = []
    stream.add_listener(seen.append)
    response = stream.result(timeout=20)
    return response, seen


# -- the request ------------------------------------------------------------------------------------

def test_the_request_carries_the_server_tools(fake, make_agent):
    agent = make_agent("s", gemini_tools=["search", "url", "code"])
    agent.chat("hi")
    tools = fake.requests[0].tools
    assert tools == [{"googleSearch": {}}, {"urlContext": {}}, {"codeExecution": {}}]
    assert "toolConfig" not in fake.requests[0].normalized_body  # no functions: nothing to combine


def test_gemini_3_mixes_server_tools_and_functions_with_the_combination_flag(fake, make_agent):
    agent = make_agent("m", model="gemini-3-flash-preview", gemini_tools="search", tools=[add])
    agent.chat("hi")
    body = fake.requests[0].normalized_body
    assert [sorted(t) for t in body["tools"]] == [["googleSearch"], ["functionDeclarations"]]
    assert body["toolConfig"] == {"includeServerSideToolInvocations": True}


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.0-flash", "models/gemini-1.5-pro"])
def test_a_model_that_refuses_the_mix_is_a_clear_config_error(model):
    with pytest.raises(ConfigError, match=r"cannot use Gemini's server tools \(code\) together with function "
                                          r"tools \(add\).*gemini-3"):
        build_config(model=model, gemini_tools=["code"], tools=[add])


def test_gemini_tools_are_parsed_from_text_and_unknown_names_are_refused():
    assert build_config(gemini_tools="search, code_execution,url").gemini_tools == ["search", "code", "url"]
    with pytest.raises(ConfigError, match="unknown Gemini tool.*bing; choose from search, url, code"):
        build_config(gemini_tools="search,bing")
    config = build_config(gemini_tools="code")
    assert json.loads(config.to_json())["gemini_tools"] == ["code"]
    assert config.generate_config(with_tools=False).tools is None  # the compaction call offers no tools


# -- code execution ---------------------------------------------------------------------------------

def test_code_execution_parts_become_events_a_transcript_and_stay_in_the_history(fake, make_agent):
    agent = make_agent("c", gemini_tools=["code"])
    fake.enqueue(Reply(chunks=[Chunk.text("Let me run it."), Chunk.code("print(6 * 7)"), Chunk.code_result("42\n"),
                               Chunk.text("It is **42**.", thought_signature=b"sig-1")]),
                 Reply.text("Still 42."))
    response, seen = run(agent, "What is 6*7?")
    assert [e for e in seen if isinstance(e, (CodeExecutionStarted, CodeExecuted))] == [
        CodeExecutionStarted("print(6 * 7)", "python"), CodeExecuted("print(6 * 7)", "python", "ok", "42\n")]
    assert response.text == "Let me run it.It is **42**."
    assert response.code_runs == [{"code": "print(6 * 7)", "language": "python", "outcome": "ok", "output": "42\n"}]

    transcript = Transcript(agent="c", model="m")
    ops = [op for event in seen for op in transcript.apply(event)]
    assert ["code", {"id": None, "code": "print(6 * 7)", "language": "python"}] in ops
    assert [b.kind for b in transcript.blocks] == ["text", "code_execution", "text"]
    bundle = transcript.static_bundle()
    html = bundle["text/html"]
    assert re.search(r'<div class="agy-code-run agy-status-ok">.*Code run by Gemini.*<pre class="agy-code"><code>'
                     r'<span class="nb">print</span>', html)  # highlighted as Python
    assert '<pre class="agy-output">42\n</pre>' in html
    assert "[code run: ok] print(6 * 7) -> 42" in bundle["text/plain"]
    assert bundle[TRANSCRIPT_MIME]["blocks"][1] == {"type": "code_execution", "id": None, "code": "print(6 * 7)",
                                                     "language": "python", "outcome": "ok", "output": "42\n"}

    # the model message keeps the parts as received, and the next turn sends them back
    agent.chat("again?")
    sent = fake.requests[1].contents[1]["parts"]
    assert sent[1] == {"executableCode": {"code": "print(6 * 7)", "language": "PYTHON"}}
    assert sent[2] == {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "42\n"}}
    assert sent[3]["thoughtSignature"] == "c2lnLTE="
    history = history_bundle(agent.history())
    assert "Code run by Gemini" in history["text/html"] and "[code run: ok]" in history["text/plain"]


def test_a_failed_run_shows_its_outcome():
    transcript = Transcript(agent="a")
    for event in (CodeExecutionStarted("1/0", "python", "r1"),
                  CodeExecuted("1/0", "python", "failed", "ZeroDivisionError", "r1")):
        transcript.apply(event)
    html = transcript.to_html()
    assert 'agy-code-run agy-status-error' in html and 'agy-tool-status">failed<' in html


# -- grounding --------------------------------------------------------------------------------------

def test_grounded_reply_renders_its_sources_as_safe_links_and_keeps_the_metadata(fake, make_agent):
    agent = make_agent("g", gemini_tools=["search", "url"])
    fake.enqueue(Reply.grounded("Gauss summed 1..100. It is 5050.", SOURCES, chunks=3, queries=["gauss sum"],
                                supports=[("It is 5050.", [0])]),
                 Reply.text("ok"))
    response, seen = run(agent, "What did Gauss sum?")
    citations = [e for e in seen if isinstance(e, Citations)]
    assert citations == [Citations(sources=[{"title": t, "uri": u} for t, u in SOURCES],
                                   supports=[{"text": "It is 5050.", "sources": [0]}], queries=["gauss sum"])]
    assert seen.index(citations[0]) > max(i for i, e in enumerate(seen) if isinstance(e, TextDelta))
    assert response.citations == [{"title": t, "uri": u} for t, u in SOURCES]

    transcript = Transcript(agent="g")
    ops = [op for event in seen for op in transcript.apply(event)]
    assert ops[-1][0] == "status" and any(op[0] == "citations" for op in ops)
    html = transcript.to_html()
    assert '<a href="https://example.org/gauss?a=1&amp;b=2" rel="noopener noreferrer nofollow">' \
           'Gauss &lt;b&gt;sum&lt;/b&gt;</a>' in html  # the title is text, the URI an escaped attribute
    assert "javascript:" not in html and "<li>Evil</li>" in html  # a non-web URI is no link
    assert "It is 5050. <span class=\"agy-mark\">[1]</span>" in html and "Searched: gauss sum" in html
    assert "1. Gauss <b>sum</b> <https://example.org/gauss?a=1&b=2>" in transcript.to_plain()

    # the reply's grounding is kept beside its parts (never sent back to the model)
    reply = [m for m in agent.history() if m.role == "model"][0]
    assert [c.web.uri for c in reply.grounding.grounding_chunks] == [u for _, u in SOURCES]
    agent.chat("thanks")
    assert "groundingMetadata" not in json.dumps(fake.requests[1].body)
    assert "Gauss &lt;b&gt;sum&lt;/b&gt;" in history_bundle(agent.history())["text/html"]


def test_grounding_repeated_on_several_chunks_is_listed_once(fake, make_agent):
    agent = make_agent("r", gemini_tools=["search"])
    metadata = Reply.grounded("x", SOURCES[:1]).chunks[-1].metadata
    fake.enqueue(Reply(chunks=[Chunk.text("a").with_metadata(**metadata), Chunk.text("b").with_metadata(**metadata)]))
    response, seen = run(agent, "q")
    assert [len(e.sources) for e in seen if isinstance(e, Citations)] == [1]
    assert response.citations == [{"title": SOURCES[0][0], "uri": SOURCES[0][1]}]


def test_a_saved_history_with_grounding_loads_back(fake, make_agent):
    agent = make_agent("h", gemini_tools=["search"])
    fake.enqueue(Reply.grounded("Paris.", [("Paris", "https://en.wikipedia.org/wiki/Paris")]))
    agent.chat("capital?")
    saved = [m.model_dump(mode="json") for m in agent.history()]
    other = make_agent("h2")
    other.import_history(saved)
    assert other.history()[1].grounding.grounding_chunks[0].web.uri == "https://en.wikipedia.org/wiki/Paris"


def test_reply_script_format_knows_code_and_sources():
    code = Reply.from_dict({"code_execution": {"code": "print(1)", "output": "1\n", "text": "one"}})
    assert [list(c.parts[0]) for c in code.chunks] == [["executableCode"], ["codeExecutionResult"], ["text"]]
    grounded = Reply.from_dict({"text": "t", "sources": [["T", "https://t.example/"]], "queries": ["q"]})
    assert grounded.chunks[-1].metadata["groundingMetadata"]["groundingChunks"] == [
        {"web": {"title": "T", "uri": "https://t.example/"}}]


# -- what the API refuses (the fake answers as it does) -----------------------------------------------

@pytest.mark.parametrize("model, flag, message", [
    ("gemini-2.5-flash", True, "Tool use with function calling is unsupported by the model."),
    ("gemini-3-flash-preview", None, "Please enable tool_config.include_server_side_tool_invocations"),
])
def test_the_fake_refuses_a_tool_mix_as_the_api_does(fake, model, flag, message):
    from google.genai import errors, types

    config = types.GenerateContentConfig(
        tools=[types.Tool(google_search=types.GoogleSearch()),
               types.Tool(function_declarations=[types.FunctionDeclaration(name="add", description="add")])],
        tool_config=types.ToolConfig(include_server_side_tool_invocations=flag) if flag else None)
    fake.enqueue(Reply.text("never sent"))
    client = fake.client()  # kept: a Client closes itself when collected
    with pytest.raises(errors.ClientError, match=re.escape(message)):
        client.models.generate_content(model=model, contents="hi", config=config)
    assert fake.pending == 1  # a refused request uses up no scripted reply


def test_vertex_refuses_the_mix_when_the_agent_is_created(fake, make_agent, monkeypatch):
    """google-genai raises for the combination flag on Vertex: say so at creation, not at the first chat."""
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    with pytest.raises(ConfigError, match="Vertex AI cannot combine Gemini's server tools with function tools"):
        make_agent("v", model="gemini-3-flash-preview", gemini_tools=["search"], tools=[add])
    assert make_agent("v2", gemini_tools=["search"]).name == "v2"  # server tools alone are fine there


def test_a_loaded_history_gives_back_the_last_turn_s_citations_and_code_runs(fake, make_agent):
    agent = make_agent("l", gemini_tools=["search", "code"])
    fake.enqueue(Reply(chunks=[Chunk.code("print(1)"), Chunk.code_result("1\n"),
                               *Reply.grounded("One.", [("One", "https://one.example/")]).chunks]))
    said = agent.chat("one?")
    other = make_agent("l2")
    other.import_history([m.model_dump(mode="json") for m in agent.history()])
    loaded = other.last_turn()
    assert loaded.citations == said.citations == [{"title": "One", "uri": "https://one.example/"}]
    assert loaded.code_runs == said.code_runs == [{"code": "print(1)", "language": "python", "outcome": "ok",
                                                   "output": "1\n"}]


def test_server_side_tool_invocation_parts_are_kept_and_sent_back(fake, make_agent):
    """Gemini 3 mixing server tools and functions answers with toolCall / toolResponse parts, which the
    next request must carry back as they came."""
    agent = make_agent("t", model="gemini-3-flash-preview", gemini_tools=["search"], tools=[add])
    call = {"toolCall": {"id": "s1", "toolType": "GOOGLE_SEARCH_WEB", "args": {"queries": ["x"]}},
            "thoughtSignature": "c2ln"}
    answer = {"toolResponse": {"id": "s1", "toolType": "GOOGLE_SEARCH_WEB", "response": {"results": []}}}
    fake.enqueue(Reply(chunks=[Chunk.raw(call), Chunk.raw(answer), Chunk.function_call("add", {"a": 1, "b": 2},
                                                                                           id="c1")]),
                 Reply.text("3"))
    assert agent.chat("add after searching").text == "3"
    sent = fake.requests[1].contents[1]["parts"]
    assert sent[:2] == [call, answer] and sent[2]["functionCall"]["name"] == "add"


def test_grounding_spread_over_chunks_is_kept_whole_in_the_history(fake, make_agent):
    agent = make_agent("sp", gemini_tools=["search"])
    first = Reply.grounded("A.", [SOURCES[0]]).chunks[-1]
    second = Reply.grounded("B.", [("Other", "https://other.example/")]).chunks[-1]
    fake.enqueue(Reply(chunks=[first, second]))
    response = agent.chat("q")
    assert [s["uri"] for s in response.citations] == [SOURCES[0][1], "https://other.example/"]
    kept = [m for m in agent.history() if m.role == "model"][0].grounding
    assert [c.web.uri for c in kept.grounding_chunks] == [SOURCES[0][1], "https://other.example/"]
    assert [(s.segment.text, s.grounding_chunk_indices) for s in kept.grounding_supports] == [("A.", [0]), ("B.", [1])]
