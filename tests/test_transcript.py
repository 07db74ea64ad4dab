"""The transcript model: widget ops, the static copy, and Markdown that never carries the model's HTML."""
from __future__ import annotations

import json

from agy_jupyter.agent.events import StatusChanged, TextDelta, ThoughtDelta, ToolCallStarted, ToolFinished
from agy_jupyter.notebook.live_reply import merge_ops
from agy_jupyter.notebook.transcript import PLAIN_PREVIEW_CHARS, TRANSCRIPT_MIME, Transcript, safe_markdown


def test_model_html_is_neutralised_outside_code():
    text = ('Hi <script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3)) '
            '`<b>inline</b>`\n```html\n<b>kept in code</b>\n```\n')
    safe = safe_markdown(text)
    assert "<script>" not in safe and "<img" not in safe and "javascript:" not in safe
    assert "&lt;script>" in safe and "`<b>inline</b>`" in safe and "<b>kept in code</b>" in safe


def test_markdown_structure_survives():
    text = "# Title\n\n> quoted & fine\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |"
    assert safe_markdown(text) == text


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


def test_static_bundle_holds_the_text_once_and_points_into_it():
    transcript = Transcript(agent="a", model="m")
    long_text = "word " * 1000
    transcript.apply(TextDelta(long_text))
    transcript.apply(ToolCallStarted("c1", "add", {"a": 1}))
    transcript.apply(ToolFinished("c1", "add", "denied", {"error": "no"}))
    transcript.status = "done"
    bundle = transcript.static_bundle()
    markdown = bundle["text/markdown"]
    blocks = bundle[TRANSCRIPT_MIME]["blocks"]
    text_block = next(b for b in blocks if b["type"] == "text")
    assert markdown[text_block["start"]:text_block["end"]].strip() == long_text.strip()
    assert next(b for b in blocks if b["type"] == "tool")["status"] == "denied"
    assert len(bundle["text/plain"]) < PLAIN_PREVIEW_CHARS + 100 and "more characters" in bundle["text/plain"]
    assert "word word" not in json.dumps(bundle[TRANSCRIPT_MIME])  # no second copy of the text in the JSON
    assert markdown.count(long_text.strip()) == 1


def test_errors_render_as_one_clear_message():
    transcript = Transcript(agent="a", model="m")
    transcript.apply(TextDelta("partial"))
    transcript.fail("quota exhausted (PerDay)", "wait for the quota to reset")
    bundle = transcript.static_bundle()
    assert "**Error:** quota exhausted (PerDay)" in bundle["text/markdown"]
    assert "wait for the quota to reset" in bundle["text/markdown"]
    assert bundle["text/plain"].endswith("[error] quota exhausted (PerDay)")


def test_static_tool_blocks_label_arguments_and_result():
    transcript = Transcript(agent="a", model="m")
    transcript.apply(ToolCallStarted("c1", "add", {"a": 1}))
    transcript.apply(ToolFinished("c1", "add", "ok", {"result": 2}))
    markdown, _ = transcript.to_markdown()
    assert "Tool call **add** · ✅ ok" in markdown
    assert markdown.index("Arguments:") < markdown.index('{"a": 1}') < markdown.index("Result:")
