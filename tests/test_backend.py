"""Backend selection from google-genai's environment: Gemini API key, Vertex AI, or a clear ConfigError."""
from __future__ import annotations

import pytest

from agy_jupyter import ConfigError
from agy_jupyter.agent.backend import GeminiBackend, resolve_credentials


def test_gemini_key_prefers_google_api_key_like_the_sdk():
    creds = resolve_credentials({"GEMINI_API_KEY": "g-key", "GOOGLE_API_KEY": "google-key"})
    assert (creds.kind, creds.api_key) == ("gemini", "google-key")
    assert "g-key" not in repr(creds) and "google-key" not in repr(creds) + creds.describe()


def test_base_url_is_kept_and_part_of_the_client_identity():
    one = resolve_credentials({"GEMINI_API_KEY": "k", "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9"})
    two = resolve_credentials({"GEMINI_API_KEY": "k"})
    assert one.base_url == "http://127.0.0.1:9" and one.cache_key != two.cache_key
    assert one.quota_key == two.quota_key  # same key, same quota, whichever server


def test_vertex_from_project_and_location():
    creds = resolve_credentials({"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "proj",
                                 "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    assert (creds.kind, creds.project, creds.location, creds.quota_key) == (
        "vertex", "proj", "europe-west4", "vertex:proj:europe-west4")
    backend = GeminiBackend(creds)
    try:
        assert backend.client.vertexai
    finally:
        backend.client.close()


def test_vertex_express_mode_with_an_api_key():
    creds = resolve_credentials({"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_API_KEY": "vk"})
    backend = GeminiBackend(creds)
    try:
        assert creds.kind == "vertex" and backend.client.vertexai and "vk" not in repr(backend)
    finally:
        backend.client.close()


@pytest.mark.parametrize("env, fragment", [
    ({}, "no Gemini API key"),
    ({"GOOGLE_GENAI_USE_VERTEXAI": "true"}, "GOOGLE_CLOUD_PROJECT"),
])
def test_missing_credentials_say_what_to_set(env, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        resolve_credentials(env)
    assert "GEMINI_API_KEY" in str(caught.value) and "python -m agy_jupyter.testing" in str(caught.value)
