"""The model backend: credentials from google-genai's own environment, one client per runtime.

All model calls go through `GeminiBackend.stream` / `generate`. The SDK's own retries are off
(attempts=1): the agent's quota layer owns retrying.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping

from google import genai
from google.genai import types

from ..runtime.errors import ConfigError
from ..runtime.quota import credential_id

_TRUE = {"1", "true", "yes", "on"}
KEY_HELP = ("set GEMINI_API_KEY (or GOOGLE_API_KEY) to a Gemini API key, or GOOGLE_GENAI_USE_VERTEXAI=true "
            "with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION for Vertex AI; for offline use run "
            "`python -m agy_jupyter.testing` and set the variables it prints")


@dataclass(frozen=True)
class Credentials:
    """Where and as whom to call the model. The key never appears in repr."""

    kind: str  # "gemini" or "vertex"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    project: str | None = None
    location: str | None = None

    @property
    def quota_key(self) -> str:
        """What quota is shared by: the key, or the Vertex project and location."""
        return self.api_key or f"vertex:{self.project}:{self.location}"

    @property
    def cache_key(self) -> tuple:
        return ("genai", self.kind, credential_id(self.api_key), self.base_url, self.project, self.location)

    def describe(self) -> str:
        where = self.base_url or ("Vertex AI" if self.kind == "vertex" else "Gemini API")
        who = f"key …{credential_id(self.api_key)[:6]}" if self.api_key else f"project {self.project}"
        return f"{self.kind} ({where}, {who})"


def resolve_credentials(environ: Mapping[str, str] | None = None, api_key: str | None = None) -> Credentials:
    """Read google-genai's environment variables; ConfigError saying how to set a key if none."""
    env = os.environ if environ is None else environ
    base_url = env.get("GOOGLE_GEMINI_BASE_URL") or None
    if env.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE:
        project = env.get("GOOGLE_CLOUD_PROJECT")
        key = api_key or env.get("GOOGLE_API_KEY")
        if not project and not key:
            raise ConfigError("GOOGLE_GENAI_USE_VERTEXAI is set but neither GOOGLE_CLOUD_PROJECT nor "
                              "GOOGLE_API_KEY is", hint=KEY_HELP)
        return Credentials("vertex", key, env.get("GOOGLE_VERTEX_BASE_URL") or None, project,
                           env.get("GOOGLE_CLOUD_LOCATION"))
    key = api_key or env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY")
    if not key:
        raise ConfigError("no Gemini API key is configured", hint=KEY_HELP)
    return Credentials("gemini", key, base_url)


class GeminiBackend:
    """A google-genai client (kept alive: its __del__ closes it) and the two calls the agent makes."""

    def __init__(self, credentials: Credentials):
        self.credentials = credentials
        options = types.HttpOptions(base_url=credentials.base_url,
                                    retry_options=types.HttpRetryOptions(attempts=1))
        if credentials.kind == "vertex":
            self.client = genai.Client(vertexai=True, api_key=credentials.api_key if not credentials.project
                                       else None, project=credentials.project,
                                       location=credentials.location, http_options=options)
        else:
            self.client = genai.Client(api_key=credentials.api_key, http_options=options)

    def __repr__(self) -> str:
        return f"<GeminiBackend {self.credentials.describe()}>"

    async def stream(self, model: str, contents: list[types.Content],
                     config: types.GenerateContentConfig) -> AsyncIterator[types.GenerateContentResponse]:
        """Open a streaming call; HTTP errors raise here, before the first chunk."""
        return await self.client.aio.models.generate_content_stream(model=model, contents=contents,
                                                                    config=config)

    async def generate(self, model: str, contents: list[types.Content],
                       config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return await self.client.aio.models.generate_content(model=model, contents=contents, config=config)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        self.client.close()
