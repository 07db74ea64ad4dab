"""Map what the backend said to typed errors, structurally.

Safety and max-tokens come only from the response itself (prompt feedback, finish reasons). Exceptions
map by HTTP code and status of google-genai's APIError, or by being a transport / timeout error.
An exception's class *name* is never consulted: a user's `MaxTokensException` is not MaxTokens.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pydantic
from google.genai import errors as genai_errors
from google.genai import types

from ..runtime.errors import AgyError, BackendError, MaxTokens, QuotaExhausted, SafetyBlocked, Timeout

SAFETY_FINISH_REASONS = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
                                   "IMAGE_SAFETY"})
MAX_TOKENS_FINISH = "MAX_TOKENS"
RETRYABLE_SERVER_CODES = frozenset({500, 502, 503, 504})

log = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [ConnectionError]
    for module_name in ("httpx", "httpx2"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found += [module.TransportError, module.StreamError]
    try:
        import aiohttp
        found.append(aiohttp.ClientError)
    except ImportError:
        pass
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()


def _connection_failures() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [ConnectionRefusedError, ConnectionResetError]
    for module_name in ("httpx", "httpx2"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        found += [module.ConnectError, module.ConnectTimeout, module.ReadError]
    try:
        import aiohttp
        found += [aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError]
    except ImportError:
        pass
    return tuple(found)


_CONNECTION_FAILURES = _connection_failures()
_NO_RESPONSE = "without sending a response"  # httpx's RemoteProtocolError when the server closed at once


def is_connection_failure(exc: BaseException) -> bool:
    """The connection was refused, reset or closed before the server answered. Only meaningful when no chunk
    came: such a request had no effect, so it may be retried. A body cut short after the headers is not one."""
    return isinstance(exc, _CONNECTION_FAILURES) or (isinstance(exc, TRANSPORT_ERRORS) and _NO_RESPONSE in str(exc))


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return getattr(value, "name", None) or str(value)


def ratings_as_dicts(ratings: list[types.SafetyRating] | None) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json", exclude_none=True) for r in ratings or []]


def check_prompt_feedback(chunk: types.GenerateContentResponse) -> None:
    """Raise SafetyBlocked when the prompt itself was blocked."""
    feedback = chunk.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        reason = enum_name(feedback.block_reason)
        detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise SafetyBlocked(f"the prompt was blocked ({reason}){detail}", reason=reason,
                            ratings=ratings_as_dicts(feedback.safety_ratings))


def check_finish(finish_reason: str | None, ratings: list[types.SafetyRating] | None, partial_text: str) -> None:
    """Raise SafetyBlocked / MaxTokens for a reply that stopped for those reasons."""
    if finish_reason in SAFETY_FINISH_REASONS:
        raise SafetyBlocked(f"the reply was stopped by the safety filter ({finish_reason})",
                            reason=finish_reason, ratings=ratings_as_dicts(ratings), partial_text=partial_text)
    if finish_reason == MAX_TOKENS_FINISH:
        raise MaxTokens("the reply hit the output token limit", partial_text=partial_text)


def api_error_message(exc: genai_errors.APIError) -> str:
    return exc.message or (json.dumps(exc.details)[:300] if exc.details else "") or "no message"


def classify_exception(exc: BaseException, *, operation: str = "model call", partial_text: str = "",
                       timeout: float | None = None) -> AgyError:
    """A typed error for an exception raised while talking to the backend.

    `timeout`: the limit that ran out, for a TimeoutError; without it the message gives no number.
    """
    if isinstance(exc, AgyError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        code = exc.code
        if code == 429:
            return QuotaExhausted(f"rate limited: {api_error_message(exc)}")
        return BackendError(code, f"{exc.status or 'error'}: {api_error_message(exc)}", partial_text=partial_text)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        if timeout is None:
            detail = f": {exc}" if str(exc) else ""
            return Timeout(operation, 0.0, f"{operation} timed out{detail}")
        return Timeout(operation, timeout)
    if isinstance(exc, TRANSPORT_ERRORS):
        where = "mid-stream" if partial_text else "before the reply"
        return BackendError(None, f"connection to the model failed {where}: {exc!r}", partial_text=partial_text)
    if isinstance(exc, (pydantic.ValidationError, json.JSONDecodeError)):
        return BackendError(None, f"malformed response from the model: {str(exc)[:300]}", partial_text=partial_text)
    return BackendError(None, f"{type(exc).__name__}: {exc}", partial_text=partial_text)


def is_retryable_server_error(exc: BaseException) -> bool:
    return isinstance(exc, genai_errors.APIError) and exc.code in RETRYABLE_SERVER_CODES


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, genai_errors.APIError) and exc.code == 429


def response_headers(exc: genai_errors.APIError) -> dict[str, str]:
    """The HTTP headers of the failed response (for Retry-After), or {} when it carries none."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return {}
    try:
        return {str(name): str(value) for name, value in headers.items()}
    except (AttributeError, TypeError, ValueError) as error:  # not a mapping: say so, wait by the body alone
        log.warning("agy: cannot read the headers of a %s response (%r); Retry-After is ignored",
                    exc.code, error)
        return {}
