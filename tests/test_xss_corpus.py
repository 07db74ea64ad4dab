"""The XSS corpus itself: big enough, distinct, each payload detectable, and its JSON copy up to date."""
from __future__ import annotations

import base64
import binascii
import html
import json
import re
import urllib.parse

import xss_corpus
from xss_corpus import EVIL_HOST, PAYLOADS

QUIET_CLASSES = {"spoof-hide"}  # fake controls, hidden text: the browser test's DOM and text checks catch them


def _decoded(text: str) -> str:
    """The text with entities, percent-escapes and base64 runs decoded, as a browser might see it."""
    text = urllib.parse.unquote(html.unescape(text))
    for run in re.findall(r"base64,([A-Za-z0-9+/=]+)", text):
        try:
            text += base64.b64decode(run).decode()
        except (binascii.Error, UnicodeDecodeError):
            pass
    return text


def test_at_least_150_distinct_payloads_in_named_classes():
    assert len(PAYLOADS) >= 150
    assert len({p.text for p in PAYLOADS}) == len(PAYLOADS)
    assert [p.id for p in PAYLOADS] == list(range(1, len(PAYLOADS) + 1))
    assert len({p.cls for p in PAYLOADS}) >= 10


def test_every_payload_would_show_itself():
    """Each one sets the page flag, opens a dialog or fetches from the evil host, unless it only spoofs or hides."""
    signs = lambda p: (f"concat({p.id})", f"alert({p.id})", f"msgbox({p.id})", EVIL_HOST)  # noqa: E731
    silent = [p for p in PAYLOADS if p.cls not in QUIET_CLASSES
              and not any(sign in _decoded(p.text).lower() for sign in signs(p))]
    assert [(p.id, p.cls, p.text[:80]) for p in silent] == []


def test_the_json_copy_for_the_javascript_tests_is_up_to_date():
    """Regenerate with `python tests/xss_corpus.py` after editing the corpus."""
    assert xss_corpus.JSON_PATH.read_text(encoding="utf-8") == xss_corpus.as_json()
    assert [p["id"] for p in json.loads(xss_corpus.JSON_PATH.read_text())] == [p.id for p in PAYLOADS]
