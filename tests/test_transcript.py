"""The transcript model: widget ops, the JSON transcript shared with the labextension, the static copy."""
from __future__ import annotations

import json
import pathlib
import re
from pathlib import Path

import pytest

from agy_jupyter.agent import events
from agy_jupyter.agent.events import StatusChanged, TextDelta, ThoughtDelta, ToolCallStarted, ToolFinished
from agy_jupyter.notebook.live_reply import merge_ops
from agy_jupyter.notebook.transcript import PLAIN_PREVIEW_CHARS, TRANSCRIPT_MIME, Transcript

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "transcripts").glob("*.json"))
# the field's default: event classes are slotted, so `cls.kind` is the slot, not the default
EVENT_TYPES = {cls.__dataclass_fields__["kind"].default: cls
               for cls in (events.TextDelta, events.ThoughtDelta, events.StatusChanged, events.QuotaWait,
                                         events.ToolCallStarted, events.ApprovalRequested, events.ToolFinished,
                                         events.CodeExecutionStarted, events.CodeExecuted, events.Citations)}


def replay(fixture: dict) -> tuple[Transcript, list]:
    """Apply a fixture's serialized events; {"kind": "error"} stands for the failure LiveReply reports."""
    expected = fixture["transcript"]
    transcript = Transcript(agent=expected["agent"], model=expected["model"])
    ops = []
    for event in fixture["events"]:
        fields = {k: v for k, v in event.items() if k != "kind"}
        if event["kind"] == "error":
            ops += transcript.fail(fields["message"], fields["hint"])
        else:
            ops += transcript.apply(EVENT_TYPES[event["kind"]](**fields))
    return transcript, ops


def test_there_are_enough_shared_fixtures():
    assert {p.stem for p in FIXTURES} >= {"parallel_same_name_without_ids", "orphan_results",
                                          "code_execution_and_citations", "code_results_by_id_and_without_code",
                                          "thoughts_and_text_interleaved", "error_after_partial_reply", "text_only"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_shared_fixture_gives_the_same_ops_and_transcript(path):
    """labextension/test/transcript_model.test.mjs applies the same ops and expects the same JSON."""
    fixture = json.loads(path.read_text())
    transcript, ops = replay(fixture)
    assert ops == fixture["ops"]
    assert transcript.to_json() == fixture["transcript"]
    saved = json.loads(json.dumps(transcript.static_bundle()[TRANSCRIPT_MIME]))
    expected = fixture["transcript"]
    assert saved["text_in"] == "text/html" and saved["thoughts"] == len(expected["thoughts"])
    assert saved["blocks"] == [{"type": "text", "chars": len(b["text"])} if b["type"] == "text" else b
                               for b in expected["blocks"]]
    assert {k: v for k, v in saved.items() if k not in ("blocks", "thoughts", "text_in")} == {
        k: v for k, v in expected.items() if k not in ("blocks", "thoughts")}


def test_parallel_calls_without_ids_are_answered_in_order():
    transcript = Transcript(agent="a")
    for args in ({"a": 1}, {"a": 2}):
        transcript.apply(ToolCallStarted(None, "add", args))
    transcript.apply(ToolFinished(None, "add", "ok", {"result": 1}))
    assert [b.result for b in transcript.blocks] == [{"result": 1}, None]  # the first open call, not the last


def test_a_result_with_an_unknown_id_answers_the_open_call_of_its_name_never_another_name():
    transcript = Transcript(agent="a")
    transcript.apply(ToolCallStarted("c1", "search", {}))
    transcript.apply(ToolFinished(None, "fetch", "ok", {}))
    transcript.apply(ToolFinished("c9", "search", "ok", {"hits": 2}))
    assert [(b.id, b.name, b.result) for b in transcript.blocks] == [("c1", "search", {"hits": 2}),
                                                                     (None, "fetch", {})]


def test_events_become_ordered_blocks_and_ops():
    transcript = Transcript(agent="a", model="m")
    ops = []
    for event in (ThoughtDelta("hmm"), TextDelta("Let me "), TextDelta("check."), ToolCallStarted("c1", "add", {"a": 1}),
                  ToolFinished("c1", "add", "ok", {"result": 2}), TextDelta("It is 2."), StatusChanged("done")):
        ops += transcript.apply(event)
    assert merge_ops(ops)[:3] == [["thought", "hmm"], ["text", "Let me check."],
                                  ["tool_call", {"id": "c1", "name": "add", "args": {"a": 1}}]]
    assert [b.kind for b in transcript.blocks] == ["text", "tool", "text"]
    assert transcript.text == "Let me check.It is 2."
    assert transcript.replay_ops()[-1] == ["status", {"status": "done", "detail": ""}]


def test_static_bundle_is_html_plain_text_and_the_json_transcript():
    transcript = Transcript(agent="a", model="m")
    long_text = "word " * 1000
    transcript.apply(TextDelta(long_text))
    transcript.apply(ToolCallStarted("c1", "add", {"a": 1}))
    transcript.apply(ToolFinished("c1", "add", "denied", {"error": "no"}))
    transcript.status, transcript.usage_line = "done", "1,234 tokens"
    bundle = transcript.static_bundle()
    assert set(bundle) == {"text/html", "text/plain", TRANSCRIPT_MIME}
    assert bundle["text/html"].count(long_text.strip()) == 1
    assert long_text.strip() not in json.dumps(bundle[TRANSCRIPT_MIME])  # the text is saved once, in the HTML
    assert bundle[TRANSCRIPT_MIME]["blocks"][0] == {"type": "text", "chars": len(long_text)}
    # block i of the JSON is the i-th text or tool element under the HTML copy's root
    order = re.findall(r'<div class="agy-(?:md agy-)?(text|tool)[ "]', bundle["text/html"])
    assert order == ["text", "tool"]
    assert bundle[TRANSCRIPT_MIME]["blocks"][1] == {"type": "tool", "id": "c1", "name": "add", "args": {"a": 1},
                                                    "status": "denied", "result": {"error": "no"}}
    plain = bundle["text/plain"].splitlines()
    assert "more characters" in plain[0] and len(plain[0]) < PLAIN_PREVIEW_CHARS + 50
    assert plain[1:] == ['[tool add: denied] {"a": 1} -> {"error": "no"}', "[a · m · done · 1,234 tokens]"]


def test_errors_render_as_one_clear_message():
    transcript = Transcript(agent="a", model="m")
    transcript.apply(TextDelta("partial"))
    transcript.fail("quota exhausted (PerDay)", "wait for the quota to reset")
    bundle = transcript.static_bundle()
    assert ('<div class="agy-error"><div class="agy-error-message">quota exhausted (PerDay)</div>'
            '<div class="agy-error-hint">wait for the quota to reset</div></div>') in bundle["text/html"]
    assert bundle["text/plain"].splitlines() == ["partial", "[error] quota exhausted (PerDay)",
                                                 "[hint] wait for the quota to reset", "[a · m · error]"]
    assert bundle[TRANSCRIPT_MIME]["error"] == {"message": "quota exhausted (PerDay)",
                                                "hint": "wait for the quota to reset"}


def test_static_tool_blocks_label_arguments_and_result_and_collapse_long_ones():
    transcript = Transcript(agent="a", model="m")
    transcript.apply(ToolCallStarted("c1", "add", {"a": 1}))
    transcript.apply(ToolFinished("c1", "add", "ok", {"rows": list(range(40))}))
    html = transcript.to_html()
    assert ('<div class="agy-tool agy-status-ok"><div class="agy-tool-head">Tool call <code class="agy-tool-name">add'
            '</code> <span class="agy-tool-status">ok</span></div>') in html
    assert '<div class="agy-label">Arguments</div><pre class="agy-json">{\n  "a": 1\n}</pre>' in html
    assert '<details class="agy-json-block"><summary>Result (44 lines)</summary>' in html


def test_thoughts_are_a_collapsed_section_of_rendered_markdown():
    transcript = Transcript(agent="a")
    transcript.apply(ThoughtDelta("**plan**"))
    html = transcript.to_html()
    assert ('<details class="agy-thoughts"><summary>Thoughts</summary><div class="agy-md agy-thought-text">'
            '<p><strong>plan</strong></p>') in html


def test_plain_text_says_how_much_of_a_long_reply_it_leaves_out():
    transcript = Transcript(agent="a")
    transcript.apply(TextDelta("x" * PLAIN_PREVIEW_CHARS))
    transcript.apply(ToolCallStarted(None, "t", {}))
    transcript.apply(TextDelta("after the tool"))
    assert transcript.to_plain().splitlines() == ["x" * PLAIN_PREVIEW_CHARS, "[tool t: pending] {}",
                                                  "… [14 more characters]", "[a · thinking]"]


def test_arguments_and_results_read_as_written_like_the_widget_shows_them():
    """Code and multi-line output are not one clipped line of escaped newlines; dom.js prettyJson reads the
    same fixture (labextension/test/pretty_json.test.mjs)."""
    from agy_jupyter.notebook.transcript import _pretty
    cases = json.loads((pathlib.Path(__file__).parent / "fixtures" / "pretty_values.json").read_text())
    for case in cases:
        assert _pretty(case["value"]) == case["text"]
