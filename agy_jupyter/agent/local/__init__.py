"""Local models behind the Gemini backend's calls: the embedded GGUF and OpenAI-compatible servers.

One agent loop serves them all: a local backend answers `stream` / `generate` with google-genai types,
so history, tools, usage, compaction, cancel and inter-agent messages work as with Gemini.
"""
from .credentials import (EMBEDDED, LocalCredentials, credentials_for, embedded_gguf, is_local_model,
                          open_backend)

__all__ = ["EMBEDDED", "LocalCredentials", "credentials_for", "embedded_gguf", "is_local_model", "open_backend"]
