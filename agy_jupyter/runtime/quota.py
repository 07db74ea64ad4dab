"""Quota shared per credential: wait before each model call, back off after a 429.

A registry maps a credential to one QuotaState, so every agent on the same key waits out the same
rate limit. Keys are stored and shown only as a short SHA-256 digest.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping

BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure"
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*s\s*$")


def credential_id(credential: str | None) -> str:
    """A short, stable, non-reversible id for a credential (never the credential itself)."""
    digest = hashlib.sha256((credential or "").encode()).hexdigest()
    return digest[:12]


class QuotaState:
    """One credential's quota: the time calls may resume and the count of hits in a row."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        self._lock = threading.Lock()  # agents on several runtimes (threads) may share a key
        self._resume_at = 0.0  # time.monotonic() before which no call should start
        self.consecutive_hits = 0
        self.total_hits = 0

    def __repr__(self) -> str:
        return f"QuotaState(key={self.key_id}, wait={self.remaining():.2f}s, hits={self.consecutive_hits})"

    def remaining(self) -> float:
        """Seconds until calls may resume (0 when free)."""
        return max(0.0, self._resume_at - time.monotonic())

    async def wait_for_quota(self, on_wait: Callable[[float], Any] | None = None) -> float:
        """Sleep until the quota allows a call; return the seconds waited."""
        waited = 0.0
        while (remaining := self.remaining()) > 0:
            if on_wait is not None:
                on_wait(remaining)
            await asyncio.sleep(remaining)
            waited += remaining
        return waited

    def record_quota_hit(self, retry_after: float | None) -> float:
        """Block calls for `retry_after` seconds (or a backoff); return the delay applied."""
        with self._lock:
            self.consecutive_hits += 1
            self.total_hits += 1
            delay = retry_after if retry_after is not None else backoff_delay(self.consecutive_hits)
            self._resume_at = max(self._resume_at, time.monotonic() + delay)
            return delay

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_hits = 0


class QuotaRegistry:
    """Maps credentials to their shared QuotaState."""

    def __init__(self, state: type[QuotaState] = QuotaState) -> None:
        self._lock = threading.Lock()
        self._state = state  # the class of each key's state (a test may note more than QuotaState does)
        self._states: dict[str, QuotaState] = {}

    def state_for_key(self, credential: str | None) -> QuotaState:
        key_id = credential_id(credential)
        with self._lock:
            state = self._states.get(key_id)
            if state is None:
                state = self._states[key_id] = self._state(key_id)
            return state

    def states(self) -> list[QuotaState]:
        """Every key's state so far."""
        with self._lock:
            return list(self._states.values())

    def __repr__(self) -> str:
        return f"QuotaRegistry({len(self._states)} credentials)"


GLOBAL_QUOTA = QuotaRegistry()  # default: one quota state per key across every runtime in the process


def backoff_delay(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_MAX) -> float:
    """Bounded exponential backoff with jitter, for the attempt-th consecutive failure (1-based)."""
    ceiling = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))  # 2**64: past any cap, no overflow
    return ceiling * random.uniform(0.5, 1.0)


@dataclass
class QuotaVerdict:
    """What a 429 means: how long to wait, or that waiting will not help."""

    retry_after: float | None
    exhausted: bool
    violations: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""


def parse_duration(value: Any) -> float | None:
    """google.protobuf.Duration as JSON ("1.5s" or {"seconds": 1, "nanos": 5e8}) → seconds; None if unreadable."""
    seconds: float | None = None
    try:
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str):
            match = _DURATION.match(value)
            seconds = float(match.group(1)) if match else None
        elif isinstance(value, Mapping):
            seconds = float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    except (TypeError, ValueError):  # server data: a malformed Duration must not break the 429 handling
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def parse_retry_after_header(value: str | None) -> float | None:
    """HTTP Retry-After: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _is_exhausting(violation: Mapping[str, Any]) -> bool:
    """A per-day quota, or a limit of zero (no free tier for this model), is not waited out."""
    quota_id = str(violation.get("quotaId") or violation.get("quota_id") or "")
    limit = violation.get("quotaValue", violation.get("quota_value"))  # not `or`: an int 0 is falsy
    limit = "" if limit is None else str(limit).strip()
    return "perday" in quota_id.lower() or limit == "0"


def classify_quota_error(details: Any, headers: Mapping[str, str] | None = None) -> QuotaVerdict:
    """Read google.rpc.RetryInfo / QuotaFailure from a 429's details, then Retry-After."""
    retry_after = None
    violations: list[dict[str, Any]] = []
    for detail in _detail_items(details):
        kind = detail.get("@type", "")
        if kind == RETRY_INFO_TYPE:
            retry_after = parse_duration(detail.get("retryDelay", detail.get("retry_delay")))
        elif kind == QUOTA_FAILURE_TYPE:
            violations.extend(v for v in detail.get("violations", []) if isinstance(v, Mapping))
    if retry_after is None and headers is not None:
        retry_after = parse_retry_after_header(_header(headers, "retry-after"))
    exhausting = [v for v in violations if _is_exhausting(v)]
    reason = ", ".join(str(v.get("quotaId") or v.get("quotaMetric") or "quota") for v in exhausting)
    return QuotaVerdict(retry_after, bool(exhausting), violations, reason)


def _detail_items(details: Any) -> list[Mapping[str, Any]]:
    # google-genai hands over the whole error JSON ({"error": {"details": [...]}}) or just the list.
    if isinstance(details, Mapping):
        inner = details.get("error", details)
        details = inner.get("details", []) if isinstance(inner, Mapping) else []
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping)]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
