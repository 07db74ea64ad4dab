"""The embedded local model: a GGUF run by llama-cpp-python in this process, behind GeminiBackend's calls.

Generation runs on one worker thread per model file (a llama.cpp context is not thread-safe, and the
runtime loop must stay free for other agents' streams); chunks come back to the loop through
`call_soon_threadsafe`. Closing or cancelling the stream sets a stop flag that llama-cpp's stopping
criteria read before each next token, so generation stops within one token.
The prompt is rendered with the GGUF's own chat template and tokenized here, as llama-cpp-python's
create_chat_completion does, so usage comes from the model's tokenizer: prompt tokens are the rendered
prompt's, output tokens the reply's. The context limit is the GGUF's training context (n_ctx=0).

Tools: llama-cpp-python's chatml-function-calling format, for GGUFs whose template is ChatML (SmolLM2's
is). In 0.3.36 that format cannot stream a call it chose itself ("Automatic streaming tool choice is not
supported") and its text branch is grammar-bound to an empty message, so it is asked only whether to
call a tool (stream=False; its usage is that call's); a text answer is then streamed with the model's own
template (its usage is the answer's). With another template, tools are off for that model, said in one line.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from google.genai import types

from ...runtime.errors import BackendError
from .openai_chat import ChatRequest, StreamReader, merge, to_chat_request

log = logging.getLogger("agy_jupyter.agent")

# create_chat_completion's defaults, so a config that sets nothing samples as llama-cpp-python's chat does
SAMPLING_DEFAULTS = {"temperature": 0.2, "top_p": 0.95}
# A small model that falls into a loop runs to the end of its context (8,192 tokens, minutes here) unless
# told to stop: without the agent's own max_output_tokens, a reply ends here, as MaxTokens with its text kept.
DEFAULT_MAX_TOKENS = 1024
CHATML_MARK = "<|im_start|>"
Emit = Callable[[tuple[str, Any]], None]


class LocalModel:
    """One GGUF, loaded on first use, and the single thread every generation with it runs on."""

    def __init__(self, path: str):
        self.path = path
        self.name = Path(path).name
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="agy-local-model")
        self._llama: Any = None
        self._formatter: Any = None
        self.calls_tools = False
        self._told_tools_off = False
        self.finished_at = 0.0  # perf_counter() when the last generation ended (cancel timing reads it)

    def load(self) -> Any:
        """The llama_cpp.Llama (on the worker thread; ~0.2 s for the embedded model)."""
        if self._llama is None:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llama = Llama(model_path=self.path, n_ctx=0, verbose=False)
            template = llama.metadata.get("tokenizer.chat_template") or ""
            if not template:
                raise BackendError(None, f"{self.name} has no chat template in its metadata; agy_jupyter needs "
                                         "one to write the conversation for it")
            eos, bos = llama.token_eos(), llama.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llama._model.token_get_text(bos) if bos != -1 else "", stop_token_ids=[eos])
            self.calls_tools = CHATML_MARK in template
            self._llama = llama
        return self._llama

    @property
    def context_size(self) -> int:
        return self._llama.n_ctx() if self._llama is not None else 0

    def generate(self, request: ChatRequest, stop: threading.Event, emit: Emit) -> None:
        """Run one request, emitting ("chunk", dict) items, then ("done", usage) or ("error", exc)."""
        try:
            if stop.is_set():  # cancelled while it waited for the thread
                emit(("done", None))
                return
            llama = self.load()
            request = _trimmed(request)
            if request.tools and self._tools_on():
                calls, usage = self._choose_tools(llama, request)
                if calls:
                    emit(("chunk", {"choices": [{"delta": {"tool_calls": calls}, "finish_reason": "tool_calls"}]}))
                    emit(("done", usage))
                    return
            emit(("done", self._complete(llama, request, stop, emit)))
        except BaseException as exc:  # the reader raises it on the loop
            emit(("error", exc))
        finally:
            self.finished_at = time.perf_counter()

    def _tools_on(self) -> bool:
        if not self.calls_tools and not self._told_tools_off:
            self._told_tools_off = True
            log.warning("agy: tools are off for the local model %s: its chat template is not ChatML, the only "
                        "one llama-cpp-python's function calling (chatml-function-calling) writes", self.name)
        return self.calls_tools

    def _sampling(self, request: ChatRequest) -> dict[str, Any]:
        return {**SAMPLING_DEFAULTS, **{k: v for k, v in request.options.items() if k != "stop"}}

    def _choose_tools(self, llama: Any, request: ChatRequest) -> tuple[list[dict], dict | None]:
        """The tool calls the model chooses, or [] if it chose to answer in text."""
        from llama_cpp.llama_chat_format import chatml_function_calling

        messages = request.messages
        if not messages or messages[0]["role"] != "system":  # that format lists the tools in a system turn
            messages = [{"role": "system", "content": ""}, *messages]
        result = chatml_function_calling(llama=llama, messages=messages, tools=request.tools, tool_choice="auto",
                                         stream=False, **self._sampling(request))
        calls = result["choices"][0]["message"].get("tool_calls") or []
        return [{"index": i, **call} for i, call in enumerate(calls)], result.get("usage")

    def _complete(self, llama: Any, request: ChatRequest, stop: threading.Event, emit: Emit) -> dict[str, int]:
        from llama_cpp import StoppingCriteriaList
        from llama_cpp.llama_grammar import LlamaGrammar

        formatted = self._formatter(messages=request.messages)
        prompt = llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        if len(prompt) >= llama.n_ctx():
            error = BackendError(400, f"the conversation is {len(prompt)} tokens, more than the local model's "
                                      f"context of {llama.n_ctx()} tokens")
            error.hint = "clear the history, or set compaction_threshold below the context size"
            raise error
        stopping = StoppingCriteriaList([lambda tokens, logits: stop.is_set(), *(formatted.stopping_criteria or [])])
        grammar = LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False) \
            if request.json_schema else None
        stops = [*formatted.stop, *(request.options.get("stop") or [])]
        text: list[str] = []
        for chunk in llama.create_completion(prompt=prompt, stream=True, stop=stops, stopping_criteria=stopping,
                                             grammar=grammar,
                                             max_tokens=request.options.get("max_tokens") or DEFAULT_MAX_TOKENS,
                                             **{k: v for k, v in self._sampling(request).items() if k != "max_tokens"}):
            choice = chunk["choices"][0]
            text.append(choice["text"])
            emit(("chunk", {"choices": [{"delta": {"content": choice["text"]},
                                         "finish_reason": choice["finish_reason"]}]}))
            if stop.is_set():
                break
        output = len(llama.tokenize("".join(text).encode("utf-8"), add_bos=False, special=True)) if text else 0
        return {"prompt_tokens": len(prompt), "completion_tokens": output, "total_tokens": len(prompt) + output}

    def close(self) -> None:
        """Free the model after the running generation (if any); the thread ends with it."""
        def free() -> None:
            if self._llama is not None:
                self._llama.close()
                self._llama = None
        try:
            self.executor.submit(free)
        except RuntimeError:  # the interpreter is exiting: its threads are being stopped anyway
            pass
        self.executor.shutdown(wait=False)


class EmbeddedBackend:
    """GeminiBackend's `stream` / `generate` / `aclose`, answered by a LocalModel."""

    def __init__(self, path: str):
        self.model = LocalModel(path)

    def __repr__(self) -> str:
        return f"<EmbeddedBackend {self.model.name}>"

    async def stream(self, model: str, contents: list[types.Content],
                     config: types.GenerateContentConfig) -> AsyncIterator[types.GenerateContentResponse]:
        request = to_chat_request(contents, config, flat=True)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: nobody is reading
                stop.set()

        self.model.executor.submit(self.model.generate, request, stop, emit)
        return self._read(queue, stop)

    async def _read(self, queue: asyncio.Queue, stop: threading.Event) -> AsyncIterator[types.GenerateContentResponse]:
        reader = StreamReader()
        try:
            while True:
                kind, item = await queue.get()
                if kind == "error":
                    raise item
                if kind == "done":
                    yield reader.final(item)
                    return
                response = reader.feed(item)
                if response is not None:
                    yield response
        finally:
            stop.set()  # a cancelled turn or a closed stream ends the generation at the next token

    async def generate(self, model: str, contents: list[types.Content],
                       config: types.GenerateContentConfig) -> types.GenerateContentResponse:
        return merge([r async for r in await self.stream(model, contents, config)])

    async def aclose(self) -> None:
        self.model.close()


def _trimmed(request: ChatRequest) -> ChatRequest:
    """The messages without surrounding whitespace. Measured with SmolLM2-135M: the same question with a
    trailing newline (a %%chat cell's body) and a system instruction made it repeat "# " until the context
    was full, where without it the model answered in 167 tokens and stopped."""
    messages = [{**m, "content": m["content"].strip()} if isinstance(m.get("content"), str) else m
                for m in request.messages]
    return dataclasses.replace(request, messages=messages)
