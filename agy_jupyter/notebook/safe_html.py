"""Untrusted model text -> HTML that is safe to put in a notebook output.

JupyterLab renders a trusted output's text/html and text/markdown without sanitizing it, and the
outputs of cells the user ran, or of a saved notebook reopened, are trusted. So everything a model
wrote (its text, thoughts, tool arguments and results, error messages, even agent and model names)
reaches the page only through this module:

- Markdown is parsed once by a real CommonMark parser (markdown-it-py) with raw HTML off, so the
  page and the parser cannot disagree about where code ends (neutralising Markdown source with
  regexes failed in Chromium: an escaped backtick or an odd fence let `<img onerror>` run).
- A model-written image never loads by itself (a remote image is the usual exfiltration channel of
  prompt injection): it becomes a link showing its alt text. Only `data:image/...;base64` images,
  which agent-made figures use, are shown.
- The result is cleaned by an allowlist sanitizer (nh3): only the tags, attributes and classes we
  emit, links only to http, https, mailto or a `#anchor`.
"""
from __future__ import annotations

import functools
import html
import re
from importlib import resources
from typing import Any

import nh3
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

ROOT_CLASS = "agy-static"
DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z", re.I)
_WEB_LINK = re.compile(r"https?://", re.I)
_WHITESPACE_SPAN = re.compile(r'<span class="w">(\s*)</span>')  # uncoloured: plain whitespace is smaller
_ALIGN = re.compile(r"text-align:(left|center|right)")
MAX_NESTING = 100  # markdown-it's commonmark preset allows 20: ten nested list items already lost the text after them
MAX_HIGHLIGHT_CHARS = 20_000  # longer code is shown plain: Pygments takes ~1.6 ms per KB here, on the runtime loop

# Every class our own markup uses; the model cannot write classes (raw HTML is off) and nh3 drops others.
OUR_CLASSES = frozenset("""
    agy-header agy-agent agy-model agy-status agy-md agy-text agy-thoughts agy-thought-text agy-tool agy-tool-head
    agy-tool-name agy-tool-status agy-json-block agy-label agy-json agy-error agy-error-message agy-error-hint
    agy-footer agy-code agy-table agy-image-link agy-align-left agy-align-center agy-align-right agy-message agy-you
    agy-reply agy-history agy-summary agy-mark agy-note agy-code-run agy-output agy-citations
    agy-status-ok agy-status-error agy-status-denied agy-status-cancelled agy-status-pending agy-status-done
    agy-status-other
""".split())
_TOKEN_CLASSES = frozenset(c for c in STANDARD_TYPES.values() if c)  # Pygments' short token classes
_TAGS = {"a", "blockquote", "br", "code", "details", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img",
         "li", "ol", "p", "pre", "s", "span", "strong", "summary", "table", "tbody", "td", "th", "thead", "tr", "ul"}
_FORMATTER = HtmlFormatter(nowrap=True, noclasses=False)  # short token classes, coloured by static_copy.css
_CLASSED_TAGS = ("a", "code", "details", "div", "pre", "span", "summary", "table", "td", "th")


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3 has already checked the URL scheme; `data:` passes it only for the images we show."""
    if tag == "img" and attribute == "src":
        return value if DATA_IMAGE.match(value.strip()) else None  # no remote image loads by itself
    if attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}},
    attribute_filter=_keep_attribute,
    link_rel="noopener noreferrer nofollow",
    url_schemes={"http", "https", "mailto", "data"},
    url_relative=lambda url: url if url.startswith("#") else None,  # an anchor, never a path on the server
    allowed_classes={tag: OUR_CLASSES | (_TOKEN_CLASSES if tag == "span" else frozenset()) for tag in _CLASSED_TAGS},
)


def clean(fragment: str) -> str:
    """The allowlist sanitizer every HTML fragment passes through before it is emitted."""
    return _CLEANER.clean(fragment)


def escape(text: Any) -> str:
    """Any untrusted value as HTML text (quotes too, so it is safe in an attribute)."""
    return html.escape(str(text), quote=True)


def escape_inline(text: Any) -> str:
    """Untrusted text for one line of HTML (newlines become spaces)."""
    return escape(text).replace("\n", " ")


def code_html(code: str, language: str = "") -> str:
    """A code block, highlighted by Pygments when `language` names a lexer; otherwise plain, escaped."""
    lexer = None
    if language and len(code) <= MAX_HIGHLIGHT_CHARS:
        try:
            lexer = get_lexer_by_name(language.lower(), stripnl=False, ensurenl=False)
        except (ClassNotFound, ValueError):
            lexer = None
    body = _WHITESPACE_SPAN.sub(r"\1", highlight(code, lexer, _FORMATTER)) if lexer is not None else escape(code)
    return f'<pre class="agy-code"><code>{body}</code></pre>\n'


def _render_fence(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
    from markdown_it.common.utils import unescapeAll

    info = unescapeAll(tokens[idx].info).strip()
    return code_html(tokens[idx].content, info.split()[0] if info else "")  # the info string is only a lookup key


def _render_code_block(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
    return code_html(tokens[idx].content)  # indented code: the same block, never highlighted


def _render_image(self: Any, tokens: list, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    if DATA_IMAGE.match(src):
        return f'<img src="{escape(src)}" alt="{escape(alt)}">'
    label = escape(f"[image: {alt}]" if alt else "[image]")
    if _WEB_LINK.match(src):
        return f'<a class="agy-image-link" href="{escape(src)}">{label}</a>'
    return label


@functools.cache
def _parser() -> Any:
    from markdown_it import MarkdownIt  # imported on first use: ~40 ms that %load_ext need not pay

    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING}).enable(["table", "strikethrough"])
    parser.add_render_rule("fence", _render_fence)
    parser.add_render_rule("code_block", _render_code_block)
    parser.add_render_rule("image", _render_image)
    return parser


def markdown_html(text: str) -> str:
    """Untrusted Markdown -> sanitized HTML fragment (balanced: it cannot close an element around it)."""
    parser = _parser()
    tokens = parser.parse(str(text))
    if tokens and max(token.level for token in tokens) >= MAX_NESTING - 1:
        # markdown-it stops at its nesting limit and silently drops the rest of the text: show all of it as text
        return code_html(str(text))
    for token in tokens:  # tables get classes our CSS can address (nh3 drops every style attribute)
        if token.type == "table_open":
            token.attrSet("class", "agy-table")
        align = _ALIGN.search(str(token.attrGet("style") or "")) if token.type in ("th_open", "td_open") else None
        if align:
            token.attrs.pop("style", None)
            token.attrSet("class", f"agy-align-{align.group(1)}")
    return clean(parser.renderer.render(tokens, parser.options, {}))


_CLASS_ATTRIBUTE = re.compile(r'class="([^"]*)"')
_SECTION = re.compile(r"/\*\s*@when\s+([\w-]+)\s*\*/")


@functools.cache
def _css_sections() -> tuple[tuple[str, str], ...]:
    """static_copy.css as (class, rules) pairs, minified; the first pair ("", …) applies to every copy."""
    css = resources.files(__package__).joinpath("static_copy.css").read_text(encoding="utf-8")
    parts = _SECTION.split(css)  # [always, class1, rules1, class2, rules2, …]
    pairs = [("", parts[0])] + list(zip(parts[1::2], parts[2::2]))
    return tuple((name, _minify(rules)) for name, rules in pairs)


def _minify(css: str) -> str:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # it is saved with every reply: no comments, no indentation
    css = re.sub(r"\s*([{};,>])\s*", r"\1", re.sub(r"\s+", " ", css))
    return re.sub(r":\s+", ":", css).replace(";}", "}").strip()  # "a :hover" keeps its space: only after colons


def static_css(body: str | None = None) -> str:
    """The stylesheet for a copy whose markup is `body` (every section when None).

    Every selector starts with `.agy-static` (JupyterLab applies an output's style page-wide). A section
    of rules for tool cards, code, tables, … is included only when `body` uses its class.
    """
    used = None if body is None else {name for names in _CLASS_ATTRIBUTE.findall(body) for name in names.split()}
    return "".join(rules for name, rules in _css_sections() if not name or used is None or name in used)


def static_html(body: str, *classes: str) -> str:
    """The root of a static copy: the stylesheet it needs, then `body` cleaned once more as a whole."""
    names = " ".join(c for c in classes if c in OUR_CLASSES)
    body = clean(body)
    return f'<div class="{ROOT_CLASS}{" " + names if names else ""}"><style>{static_css(body)}</style>{body}</div>'
