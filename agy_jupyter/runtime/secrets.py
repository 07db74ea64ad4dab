"""Secrets (API keys) kept out of every message, error and log line.

The key goes to the SDK and nowhere else: quota and client caches use a hash of it, and reprs leave it out.
What could still echo it is text we did not write: an API error that quotes the request, a library's log
line, an exception's message. So every key in use is remembered here, and
- `redact(text)` replaces it in any text (AgyError does it to its message and hint);
- log records, of every logger in the process, are redacted when they are made (message, arguments and
  the formatted exception), before any handler sees them.
Values shorter than MIN_CHARS are not treated as secrets (a local server's key "x" must not erase every x).
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

MIN_CHARS = 8
REDACTED = "[redacted key]"

_secrets: frozenset[str] = frozenset()
_lock = threading.Lock()
_installed = False


def remember(secret: str | None) -> None:
    """Treat `secret` as a key: from now on it is redacted wherever it would appear."""
    global _secrets
    if not secret or len(secret) < MIN_CHARS or secret in _secrets:
        return
    with _lock:
        _secrets = _secrets | {secret}
        _install_log_redaction()


def redact(text: str) -> str:
    """`text` with every remembered key replaced by REDACTED."""
    for secret in _secrets:  # a frozenset swapped whole: safe to read without the lock
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _install_log_redaction() -> None:
    """Wrap the log record factory once: records are redacted as they are made, whichever logger."""
    global _installed
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not _secrets:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: leave it to logging's own report
            return record
        if record.exc_info and not record.exc_text:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if any(secret in message for secret in _secrets):
            record.msg, record.args = redact(message), ()
        return record

    logging.setLogRecordFactory(redacted_record)
    _installed = True
