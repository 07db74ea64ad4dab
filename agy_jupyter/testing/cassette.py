"""Cassettes: a recorded model session, replayed offline and deterministically.

A cassette is a versioned, human-readable JSON file holding each model request a session made
(method, path, model, the JSON body) and the reply it got: the status, and for a streamed reply
every SSE event with the time it arrived (seconds after the request). The key is never in it:
``key=`` query parameters and all request headers are dropped, and every credential value the
recorder saw (the ``x-goog-api-key`` header, ``?key=``, an ``Authorization`` bearer token,
``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``; 8 characters or more: a local server's key ``"x"`` is no
credential) and anything shaped like a Google API key (``AIza…``) is replaced by ``<scrubbed>``
anywhere in the file; a save that would still contain one raises.

Record with :func:`agy_jupyter.testing.record` (a proxy, see :mod:`.recorder`); replay with
``FakeGemini(cassette="session.json", speed="fast")`` or ``python -m agy_jupyter.testing
--cassette session.json``. Replay matches each request against the first unused recorded
request that is equal (so the order only matters between equal requests, and agents running
side by side still match); when none is, the server answers HTTP 400 whose message names the
first differing field against the next unused recording, e.g.
``contents[2].parts[0].text: expected 'Say hi' got 'Say bye'``, and keeps the mismatch in
``fake.cassette_mismatches`` (``FakeGemini.__exit__`` and ``verify_cassette()`` raise it).

Format (``"version": 1``)::

    {"format": "agy_jupyter cassette", "version": 1, "recorded_at": "...Z", "upstream": "...",
     "interactions": [
       {"request": {"method": "POST", "path": "/v1/models/M:streamGenerateContent?alt=sse",
                    "model": "M", "action": "streamGenerateContent", "body": {...}},
        "response": {"status": 200, "events": [
                       {"t": 0.412, "data": {...one SSE event's JSON...}},
                       ...],
                     "end": 0.913}},
       {"request": {..."action": "generateContent"...},
        "response": {"status": 200, "t": 0.7, "body": {...}}},
       {"request": {...}, "response": {"status": 429, "t": 0.1, "body": {"error": ...},
                                       "headers": {"Retry-After": "2"}}}]}

``events`` marks a streamed reply; ``"dropped": true`` means the upstream connection broke
after the events listed (replay hangs up at the same point); ``"cancelled": true`` means the
client went away after them (replay sends them, then waits until the client goes). Bodies are compared after
camelCase normalisation (:func:`~agy_jupyter.testing.normalize_keys`), so the SDK's mixed
spellings do not matter.

Speed: ``"fast"`` (no waits), ``"realtime"`` (the recorded times) or a number N (N times
faster than recorded).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Union

from .fake_gemini import normalize_keys
from .replies import Plan

__all__ = ["Cassette", "Interaction", "CassetteMismatch", "CassettePlayer", "first_difference",
           "parse_speed", "scrub", "FORMAT", "VERSION", "SCRUBBED"]

FORMAT = "agy_jupyter cassette"
VERSION = 1
SCRUBBED = "<scrubbed>"
# The shape of a Google API key: scrubbed even when the recorder never saw it as a credential.
_GOOGLE_KEY_RE = re.compile(r"AIza[0-9A-Za-z_\-]{35}")
_KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
# Shorter "keys" (a local server's "x") are not credentials, and replacing every "x" would wreck the file.
MIN_SECRET_LENGTH = 8
# Response headers worth replaying (the quota layer reads Retry-After); everything else is transport.
REPLAYED_HEADERS = ("retry-after",)

Speed = Union[str, float, int]


# --------------------------------------------------------------------------- scrubbing
def environment_secrets(environ: Any = None) -> set[str]:
    """Key values set in google-genai's key variables (scrubbed even if no request carried them)."""
    env = os.environ if environ is None else environ
    return {env[name].strip() for name in _KEY_ENV_VARS if env.get(name, "").strip()}


def _credentials(secrets: Iterable[str]) -> set[str]:
    return {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of JSON-like `value` with every secret (and anything shaped like a Google key) replaced."""
    # Longest first, so a secret that contains another is replaced whole.
    ordered = sorted(_credentials(secrets), key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, SCRUBBED)
        return _GOOGLE_KEY_RE.sub(SCRUBBED, text)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return clean(item)
        if isinstance(item, list):
            return [walk(x) for x in item]
        if isinstance(item, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        return item

    return walk(value)


# --------------------------------------------------------------------------- the file
@dataclass
class Interaction:
    """One recorded request and the reply it got (the JSON dicts of the cassette format)."""

    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def streamed(self) -> bool:
        return "events" in self.response

    @property
    def duration(self) -> float:
        """Seconds from the request to the end of its reply, as recorded."""
        return float(self.response.get("end", self.response.get("t", 0.0)))

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "response": self.response}


@dataclass
class Cassette:
    """A recorded session: ``interactions`` in the order their requests arrived."""

    interactions: list[Interaction] = field(default_factory=list)
    upstream: str | None = None
    recorded_at: str | None = None
    path: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Cassette":
        """Read a cassette file; ValueError saying what is wrong if it is not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no cassette at {path}: record one first with "
                                    "agy_jupyter.testing.record()") from None
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path} is not an agy_jupyter cassette (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise ValueError(f"{path} is cassette version {data.get('version')!r}; this agy_jupyter reads "
                             f"version {VERSION}: record it again")
        interactions = [Interaction(dict(item["request"]), dict(item["response"]))
                        for item in data.get("interactions", [])]
        return cls(interactions, data.get("upstream"), data.get("recorded_at"), path)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION,
                "recorded_at": self.recorded_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "upstream": self.upstream, "interactions": [i.to_json() for i in self.interactions]}

    def dumps(self, secrets: Iterable[str] = ()) -> str:
        """The file's text, scrubbed; ValueError if a secret would still be in it."""
        secrets = _credentials(secrets)
        text = format_json(scrub(self.to_json(), secrets))
        # The structural scrub saw decoded strings; check the encoded text too before anything is written.
        if any(s in text or json.dumps(s)[1:-1] in text for s in secrets) or _GOOGLE_KEY_RE.search(text):
            raise ValueError("refusing to write a cassette that still contains a credential")
        return text

    def save(self, path: str | os.PathLike | None = None, secrets: Iterable[str] = ()) -> Path:
        """Write atomically (a reader never sees half a file); returns the path."""
        target = Path(path or self.path or "cassette.json")
        text = self.dumps(secrets)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
        self.path = target
        return target


def format_json(value: Any, indent: int = 0, compact_key: str = "events", width: int = 110) -> str:
    """Pretty JSON that stays short: a value that fits on its line is written on one line, and each
    item of an ``events`` list gets a line of its own."""
    compact = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or indent + len(compact) <= width:
        return compact
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, list):
        return "[\n" + ",\n".join(inner + format_json(v, indent + 2, compact_key, width) for v in value) + \
            "\n" + pad + "]"
    items = []
    for key, item in value.items():
        if key == compact_key and isinstance(item, list) and item:
            lines = ",\n".join(inner + "  " + json.dumps(e, ensure_ascii=False) for e in item)
            text = "[\n" + lines + "\n" + inner + "]"
        else:
            text = format_json(item, indent + 2, compact_key, width)
        items.append(f"{inner}{json.dumps(key, ensure_ascii=False)}: {text}")
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


# --------------------------------------------------------------------------- matching
def _clip(value: Any, at: int = 0, width: int = 60) -> str:
    """repr of a value; a long string is shown around position `at` (where it first differs)."""
    if not isinstance(value, str) or len(value) <= width:
        return repr(value)
    start = max(0, min(at - width // 3, len(value) - width))
    text = value[start:start + width]
    return ("…" if start else "") + repr(text) + ("…" if start + width < len(value) else "")


def _first_diff_index(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def first_difference(expected: Any, got: Any, path: str = "") -> str | None:
    """The first place where two JSON values differ, as ``path: expected X got Y``; None if equal."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in expected:
            where = f"{path}.{key}" if path else str(key)
            if key not in got:
                return f"{where}: expected {_clip(expected[key])} got nothing"
            found = first_difference(expected[key], got[key], where)
            if found:
                return found
        for key in got:
            if key not in expected:
                where = f"{path}.{key}" if path else str(key)
                return f"{where}: expected nothing got {_clip(got[key])}"
        return None
    if isinstance(expected, list) and isinstance(got, list):
        for i, (a, b) in enumerate(zip(expected, got)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(expected) != len(got):
            return f"{path or 'value'}: expected {len(expected)} items got {len(got)}"
        return None
    if type(expected) is not type(got) and not (isinstance(expected, (int, float)) and isinstance(got, (int, float))
                                                and not isinstance(expected, bool) and not isinstance(got, bool)):
        return f"{path or 'value'}: expected {_clip(expected)} got {_clip(got)}"
    if expected != got:
        at = _first_diff_index(expected, got) if isinstance(expected, str) else 0
        return f"{path or 'value'}: expected {_clip(expected, at)} got {_clip(got, at)}"
    return None


def request_key(request: dict[str, Any]) -> dict[str, Any]:
    """What replay compares: the method (action), the model and the camelCase body."""
    return {"action": request.get("action"), "model": request.get("model"),
            "body": normalize_keys(request.get("body"))}


def _body_difference(expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    """first_difference of two request keys; body paths are named without a ``body.`` prefix."""
    for name in ("action", "model"):
        if expected[name] != got[name]:
            return f"{name}: expected {expected[name]!r} got {got[name]!r}"
    return first_difference(expected["body"], got["body"])


@dataclass
class CassetteMismatch:
    """A request the cassette has no recording for."""

    request_index: int             # the live request's index (FakeGemini.requests)
    interaction: int | None        # the recording it was compared with (the next unused), None if all used
    difference: str                # e.g. "contents[2].parts[0].text: expected 'a' got 'b'"
    cassette: str = ""

    def __str__(self) -> str:
        where = f"cassette {self.cassette}: " if self.cassette else "cassette: "
        if self.interaction is None:
            return f"{where}request {self.request_index} has no recording left ({self.difference})"
        return (f"{where}request {self.request_index} does not match recorded interaction "
                f"{self.interaction}: {self.difference}")


class CassetteMismatchError(AssertionError):
    """Raised at the end of a replay that answered a request the cassette does not hold."""

    def __init__(self, mismatches: list[CassetteMismatch], unused: list[int] | None = None):
        self.mismatches = list(mismatches)
        self.unused = list(unused or [])
        lines = [str(m) for m in self.mismatches]
        if self.unused:
            lines.append(f"recorded interactions never requested: {self.unused}")
        super().__init__("; ".join(lines))


def parse_speed(speed: Speed) -> float:
    """The factor recorded times are multiplied by: "fast" -> 0, "realtime" -> 1, N -> 1/N."""
    if isinstance(speed, str):
        name = speed.strip().lower()
        if name == "fast":
            return 0.0
        if name in ("realtime", "real-time", "real"):
            return 1.0
        try:
            speed = float(name)
        except ValueError:
            raise ValueError(f"speed {speed!r}: use 'fast', 'realtime' or a number (2 = twice as fast)") from None
    if not speed > 0:
        raise ValueError(f"speed {speed!r}: a number must be > 0 (2 = twice as fast)")
    return 1.0 / float(speed)


class CassettePlayer:
    """Answers live requests from a cassette (thread-safe; used by FakeGemini)."""

    def __init__(self, cassette: Cassette | str | os.PathLike, speed: Speed = "fast"):
        self.cassette = cassette if isinstance(cassette, Cassette) else Cassette.load(cassette)
        self.time_scale = parse_speed(speed)
        self._keys = [request_key(i.request) for i in self.cassette.interactions]
        self._used = [False] * len(self._keys)
        self._lock = threading.Lock()
        self.mismatches: list[CassetteMismatch] = []

    @property
    def name(self) -> str:
        return str(self.cassette.path) if self.cassette.path else ""

    @property
    def unused(self) -> list[int]:
        """Indices of recorded interactions no request has matched yet."""
        with self._lock:
            return [i for i, used in enumerate(self._used) if not used]

    def plan_for(self, *, action: str, model: str, body: Any, index: int, secrets: Iterable[str] = ()) -> Plan:
        """The recorded reply to this request, or an HTTP 400 naming the difference."""
        # The cassette holds scrubbed bodies: scrub the live one the same way before comparing.
        live = request_key({"action": action, "model": model, "body": scrub(body, secrets)})
        with self._lock:
            unused = [i for i, used in enumerate(self._used) if not used]
            for i in unused:
                if _body_difference(self._keys[i], live) is None:
                    self._used[i] = True
                    return self._recorded_plan(self.cassette.interactions[i])
            if unused:
                mismatch = CassetteMismatch(index, unused[0], _body_difference(self._keys[unused[0]], live) or "",
                                            self.name)
            else:  # say how it differs from the recording it would have been, had the session been longer
                nearest = min(index, len(self._keys) - 1)
                difference = f"all {len(self._keys)} recorded interactions were used"
                if nearest >= 0:
                    difference += f"; against interaction {nearest}: {_body_difference(self._keys[nearest], live)}"
                mismatch = CassetteMismatch(index, None, difference, self.name)
            self.mismatches.append(mismatch)
        return Plan(status=400, is_error=True, merged={"error": {
            "code": 400, "message": str(mismatch), "status": "FAILED_PRECONDITION"}})

    def _recorded_plan(self, interaction: Interaction) -> Plan:
        response, scale = interaction.response, self.time_scale
        status = int(response.get("status", 200))
        if not interaction.streamed:
            headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
            return Plan(status=status, is_error=status >= 400, merged=response.get("body"), headers=headers,
                        ttft=float(response.get("t", 0.0)) * scale)
        events = response["events"]
        times = [float(e.get("t", 0.0)) for e in events]
        gaps = [0.0] + [max(0.0, b - a) * scale for a, b in zip(times, times[1:])]
        return Plan(events=[e["data"] for e in events], ttft=(times[0] if times else 0.0) * scale,
                    delays=gaps, drop_at=len(events) if response.get("dropped") else None,
                    stall_at=len(events) if response.get("cancelled") else None)
