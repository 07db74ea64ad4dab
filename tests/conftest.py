"""Shared fixtures: a fake Gemini server on 127.0.0.1 and a fresh runtime per test."""
from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings

from agy_jupyter import Agent, Runtime, RuntimeConfig
from agy_jupyter.runtime.quota import QuotaRegistry
from agy_jupyter.testing import FakeGemini

# The fuzz tests (test_fuzz.py) run the same cases every time here, so a run is reproducible; explore new
# ones with HYPOTHESIS_PROFILE=explore (and AGY_FUZZ_EXAMPLES=2000).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Conversations are saved in jupyter_core's data directory: the tests' (and their kernels') go to a scratch
# one, never the user's own. Set at import, before any module-scoped kernel copies the environment.
os.environ["JUPYTER_DATA_DIR"] = tempfile.mkdtemp(prefix="agy-test-data-")

CREDENTIAL_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
                   "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "AGY_CHAT_TIMEOUT_SECS",
                   "AGI_CHAT_TIMEOUT_SECS")


@pytest.fixture
def no_credentials(monkeypatch):
    for name in CREDENTIAL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake(monkeypatch, no_credentials):
    """A running fake Gemini server whose address and key are in the environment."""
    with FakeGemini() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def runtime(fake):
    """A runtime with short timeouts and its own quota registry (no state leaks between tests)."""
    rt = Runtime(RuntimeConfig(chat_timeout=20, shutdown_timeout=5, inter_agent_delay=0.05),
                 quota=QuotaRegistry())
    yield rt
    rt.shutdown()


@pytest.fixture
def make_agent(runtime):
    """make_agent(name, **settings) -> Agent on the test's runtime."""
    def make(name: str = "agent", **settings) -> Agent:
        return Agent(name, runtime=runtime, **settings)
    return make
