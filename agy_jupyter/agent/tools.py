"""Custom tools from plain Python callables: JSON schema, argument validation, result conversion."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pydantic
import pydantic_core
from google.genai import types

from agy_jupyter.agent.content import Blob, dataframe_summary, is_dataframe
from agy_jupyter.agent.worker_threads import is_async_callable
from agy_jupyter.runtime.errors import ConfigError, ToolError

__all__ = ["Tool", "ToolResult", "tool", "as_tool", "result_to_response", "split_media", "parse_docstring"]

_META_ATTR = "__agy_tool__"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
_MAX_REPR = 4000
_MAX_ERRORS = 3


# --- names ----------------------------------------------------------------------


def _check_name(name: str) -> str:
    if name == "<lambda>":
        raise ConfigError(
            "a lambda has no name to use as a tool name",
            hint="name it: tool(lambda ...: ..., name='my_tool'), or use a def",
        )
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid tool name {name!r}",
            hint="use letters, digits, '_', '.', ':' or '-', start with a letter or '_', at most 64 characters",
        )
    return name


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"tool timeout must be a positive number of seconds, not {timeout!r}")
    return timeout


def _unpartial(obj: Any) -> Any:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return obj


def _default_name(obj: Any) -> str:
    obj = _unpartial(obj)
    name = getattr(obj, "__name__", None)
    if name is None:  # a callable object: use its class name
        name = type(obj).__name__
    return name


# --- docstrings -----------------------------------------------------------------

_GOOGLE_SECTIONS = {
    "args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "kwargs",
    "other parameters", "returns", "return", "yields", "yield", "raises", "raise", "exceptions",
    "examples", "example", "note", "notes", "see also", "warning", "warnings", "warns",
    "attributes", "todo", "references",
}
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters"}
_SPHINX_FIELD = re.compile(r"^:(param|parameter|arg|argument|key|keyword|type|returns?|rtype|raises?|except|exception|yields?)\b")
_SPHINX_PARAM = re.compile(r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}([\w, *]+?)\s*(?::\s*.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _entries(block: list[str]) -> list[tuple[str, list[str]]]:
    """Split an indented block into (head line, continuation lines) entries at its base indent."""
    filled = [ln for ln in block if ln.strip()]
    if not filled:
        return []
    base = min(_indent(ln) for ln in filled)
    out: list[tuple[str, list[str]]] = []
    for ln in block:
        if not ln.strip():
            continue
        if _indent(ln) == base:
            out.append((ln.strip(), []))
        elif out:
            out[-1][1].append(ln.strip())
    return out


def _headers(lines: list[str]) -> list[tuple[int, int, str]]:
    """Section headers as (first line, first body line, kind); kind is a lower-case section name or 'sphinx'."""
    found = []
    for i, line in enumerate(lines):
        text = line.strip()
        if _indent(line) > 0 or not text:
            continue
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if nxt and set(nxt) == {"-"} and len(nxt) >= 3:  # NumPy: "Parameters\n----------"
            found.append((i, i + 2, "numpy:" + text.lower()))
        elif text.endswith(":") and text[:-1].strip().lower() in _GOOGLE_SECTIONS:
            found.append((i, i + 1, text[:-1].strip().lower()))
        elif _SPHINX_FIELD.match(text):
            found.append((i, i, "sphinx"))
    return found


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and per-parameter descriptions (Google, Sphinx or NumPy)."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    headers = _headers(lines)
    summary = "\n".join(lines[: headers[0][0] if headers else len(lines)]).strip()
    params: dict[str, str] = {}
    for n, (start, body, kind) in enumerate(headers):
        end = headers[n + 1][0] if n + 1 < len(headers) else len(lines)
        block = lines[body:end]
        if kind == "sphinx":
            # One field per header; continuation lines are the indented ones after it.
            m = _SPHINX_PARAM.match(lines[start].strip())
            if m:
                more = [ln.strip() for ln in block[1:] if ln.strip()]
                params[m.group(1)] = " ".join([m.group(2).strip(), *more]).strip()
        elif kind in _PARAM_SECTIONS:
            for head, more in _entries(block):
                m = _GOOGLE_ENTRY.match(head)
                if m:
                    params[m.group(1)] = " ".join([m.group(2).strip(), *more]).strip()
        elif kind.startswith("numpy:") and kind[6:] in _PARAM_SECTIONS:
            for head, more in _entries(block):
                m = _NUMPY_ENTRY.match(head)
                if m:
                    for name in m.group(1).split(","):  # "x, y : int" documents both
                        params[name.strip().lstrip("*")] = " ".join(more).strip()
    return summary, {k: v for k, v in params.items() if v}


# --- signature -> pydantic model --------------------------------------------------


@dataclass(frozen=True)
class _Meta:
    name: str | None = None
    description: str | None = None
    timeout: float | None = None


@dataclass
class _Arguments:
    """The pydantic model that validates a tool's arguments, and how its fields map to parameters."""

    model: type[pydantic.BaseModel]
    fields: dict[str, str]  # model field name -> parameter name
    var_keyword: bool  # the callable takes **kwargs, so extra arguments pass through


def _doc_and_hints_source(obj: Any) -> tuple[Any, Any]:
    """(object whose docstring describes obj, function whose type hints describe its parameters)."""
    obj = _unpartial(obj)
    if inspect.ismethod(obj):
        return obj.__func__, obj.__func__
    if inspect.isclass(obj):
        return obj, obj.__init__
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return obj, obj
    call = getattr(type(obj), "__call__", None)  # a callable object
    return (call if inspect.getdoc(call) else type(obj)), call


def _partial_keywords(obj: Any) -> set[str]:
    """Keyword arguments bound by functools.partial: the caller chose them, so the model does not see them."""
    bound: set[str] = set()
    while isinstance(obj, functools.partial):
        bound |= set(obj.keywords)
        obj = obj.func
    return bound


def _type_hints(source: Any, name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(source, include_extras=True)
    except NameError as e:
        raise ConfigError(
            f"cannot resolve the type hints of tool {name!r}: {e}",
            hint="define the types it names at module level, before building the tool",
        ) from e
    except TypeError:  # builtins and other objects without annotations
        return {}


def _build_arguments(obj: Any, name: str) -> _Arguments:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot read the signature of tool {name!r}", hint="wrap it in a def with type hints") from e
    _, hints_source = _doc_and_hints_source(obj)
    hints = _type_hints(hints_source, name)
    hidden = _partial_keywords(obj)
    params = list(sig.parameters.values())
    if params and params[0].name in ("self", "cls") and not inspect.ismethod(_unpartial(obj)):
        params = params[1:]  # an unbound method: the instance is not the model's business

    definitions: dict[str, Any] = {}
    fields: dict[str, str] = {}
    var_keyword = False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            var_keyword = True
            continue
        if p.kind is p.VAR_POSITIONAL or p.name in hidden:
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {name!r} has positional-only parameter {p.name!r}; tools are called with keyword arguments",
                hint="wrap it in a def with ordinary parameters",
            )
        annotation = hints.get(p.name, Any)
        default = ... if p.default is p.empty else p.default
        # Internal field names with aliases: parameter names like "_x" or "json" would clash with pydantic.
        field_name = f"p{i}"
        definitions[field_name] = (annotation, pydantic.Field(default, alias=p.name))
        fields[field_name] = p.name

    config = pydantic.ConfigDict(
        extra="allow" if var_keyword else "forbid",
        coerce_numbers_to_str=True,  # models sometimes send 42 for a string parameter
    )
    try:
        model = pydantic.create_model(f"{name}_arguments", __config__=config, **definitions)
    except Exception as e:  # pydantic raises several error types for unusable annotations
        raise _type_error(name, definitions, fields, e) from e
    return _Arguments(model=model, fields=fields, var_keyword=var_keyword)


def _type_error(name: str, definitions: dict[str, Any], fields: dict[str, str], error: Exception) -> ConfigError:
    """Name the parameter whose type has no JSON schema."""
    for field_name, (annotation, _) in definitions.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydantic.TypeAdapter(annotation).json_schema()
        except Exception:
            return ConfigError(
                f"parameter {fields[field_name]!r} of tool {name!r} has type {_type_name(annotation)}, "
                "which has no JSON schema",
                hint="use JSON-friendly types: str, int, float, bool, list, dict, Literal, Enum or a pydantic model",
            )
    return ConfigError(f"cannot build the argument schema of tool {name!r}: {error}")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


# --- schema cleaning -----------------------------------------------------------

_SCHEMA_MAPS = {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"}
_DATA_KEYS = {"default", "enum", "const", "examples"}


def _clean(node: Any) -> Any:
    """Drop pydantic's "title" keywords everywhere, leaving property names and data values alone."""
    if isinstance(node, list):
        return [_clean(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in _DATA_KEYS:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _clean(v) for k, v in value.items()}
        else:
            out[key] = _clean(value)
    return out


def _json_schema(args: _Arguments, name: str, param_docs: dict[str, str]) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-JSON defaults are simply left out of the schema
            raw = args.model.model_json_schema()
    except Exception as e:
        definitions = {f: (args.model.model_fields[f].annotation, None) for f in args.fields}
        raise _type_error(name, definitions, args.fields, e) from e
    properties = raw.get("properties", {})
    for pname, prop in properties.items():
        # An explicit Field(description=...) wins over the docstring.
        if pname in param_docs and "description" not in prop:
            prop["description"] = param_docs[pname]
    schema: dict[str, Any] = {"type": "object", "properties": {k: _clean(v) for k, v in properties.items()}}
    if raw.get("required"):
        schema["required"] = list(raw["required"])
    if raw.get("$defs"):
        schema["$defs"] = _clean(raw["$defs"])
    if args.var_keyword:
        schema["additionalProperties"] = True
    return schema


# --- validation errors -----------------------------------------------------------


def _loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_errors(error: pydantic.ValidationError, parameters: list[str]) -> str:
    missing: list[str] = []
    messages: list[str] = []
    for err in error.errors(include_url=False):
        where = _loc(err["loc"])
        if err["type"] == "missing":
            missing.append(repr(where))
            continue
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            expected = ", ".join(parameters) if parameters else "none"
            msg = f"unexpected argument {where!r} (the parameters are: {expected})"
        else:
            msg = f"argument {where!r}: {err['msg']} (got {_short_repr(err.get('input'))})"
        if msg not in messages:
            messages.append(msg)
    if missing:  # one entry for all of them: the model needs the whole list to retry
        plural = "s" if len(missing) > 1 else ""
        messages.insert(0, f"missing required argument{plural} {', '.join(missing)}")
    text = "; ".join(messages[:_MAX_ERRORS])
    if len(messages) > _MAX_ERRORS:
        text += f"; and {len(messages) - _MAX_ERRORS} more"
    return text


# --- Tool ------------------------------------------------------------------------


TOOL_EFFECTS = (None, "read", "write", "execute")


@dataclass
class Tool:
    """A callable the model may call: its declaration, argument validation and the callable itself."""

    name: str
    description: str
    parameters_json_schema: dict
    func: Callable
    is_async: bool
    timeout: float | None = None
    effect: str | None = None  # "read", "write" or "execute" for builtin tools; the default policies read it
    # what an approval shows of a call: preview(args) -> {"kind": "code" | "command" | "diff", "text": str,
    # "language": str}; None shows the arguments as JSON
    preview: Callable[[dict], dict] | None = field(default=None, repr=False, compare=False)
    _arguments: _Arguments | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_timeout(self.timeout)
        if self.effect not in TOOL_EFFECTS:
            raise ConfigError(f"tool {self.name!r}: effect must be one of read, write, execute (or None), "
                              f"not {self.effect!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly."""
        return self.func(*args, **kwargs)

    def declaration(self) -> types.FunctionDeclaration:
        """The google-genai declaration of this tool."""
        return types.FunctionDeclaration(
            name=self.name,
            description=self.description or None,
            parameters_json_schema=self.parameters_json_schema,
        )

    def validate(self, args: dict | None) -> dict:
        """Validate and coerce the model's arguments into kwargs for func; ToolError says what is wrong."""
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ToolError(self.name, f"arguments must be an object, not {type(args).__name__}")
        if self._arguments is None:  # built by hand with its own schema: nothing to check against
            return dict(args)
        spec = self._arguments
        try:
            model = spec.model.model_validate(args)
        except pydantic.ValidationError as e:
            raise ToolError(self.name, _describe_errors(e, list(spec.fields.values()))) from None
        # Only what the model sent: the function's own defaults apply to the rest.
        kwargs = {spec.fields[f]: getattr(model, f) for f in spec.fields if f in model.model_fields_set}
        if spec.var_keyword and model.model_extra:
            kwargs.update(model.model_extra)
        return kwargs


def _find_meta(obj: Any) -> _Meta:
    while True:
        meta = getattr(obj, _META_ATTR, None)
        if isinstance(meta, _Meta):
            return meta
        if not isinstance(obj, functools.partial):
            return _Meta()
        obj = obj.func


def _make_tool(obj: Any, meta: _Meta) -> Tool:
    name = _check_name(meta.name or _default_name(obj))
    doc_source, _ = _doc_and_hints_source(obj)
    summary, param_docs = parse_docstring(inspect.getdoc(doc_source))
    arguments = _build_arguments(obj, name)
    return Tool(
        name=name,
        description=meta.description if meta.description is not None else summary,
        parameters_json_schema=_json_schema(arguments, name, param_docs),
        func=obj,
        is_async=is_async_callable(obj),
        timeout=_check_timeout(meta.timeout),
        _arguments=arguments,
    )


def as_tool(obj: Any) -> Tool:
    """A Tool from a Tool, a @tool-decorated function, or any plain callable."""
    if isinstance(obj, Tool):
        return obj
    if not callable(obj):
        raise ConfigError(f"a tool must be callable, not {type(obj).__name__}", hint="pass a function or a Tool")
    return _make_tool(obj, _find_meta(obj))


def tool(func: Callable | None = None, *, name: str | None = None, description: str | None = None,
         timeout: float | None = None) -> Any:
    """Mark a callable as a tool (name, description, timeout); it stays callable as before.

    Usable as @tool, @tool(timeout=5) or tool(fn, name="x"). Callables that cannot carry
    attributes (bound methods, builtins) come back as a callable Tool instead.
    """
    meta = _Meta(name=name, description=description, timeout=_check_timeout(timeout))

    def mark(f: Callable) -> Any:
        if isinstance(f, Tool):
            raise ConfigError(f"{f.name!r} is already a Tool", hint="build it with the options you want instead")
        _check_name(name or _default_name(f))  # fail at decoration time, not at the first chat
        try:
            setattr(f, _META_ATTR, meta)
        except (AttributeError, TypeError):
            return _make_tool(f, meta)
        return f

    return mark if func is None else mark(func)


# --- results -----------------------------------------------------------------------


def _truncate(text: str, limit: int = _MAX_REPR) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [truncated, {len(text)} chars]"


def _numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0


def _is_plain_json(value: Any) -> bool:
    """JSON types only, string keys, finite floats: safe to hand to the SDK unchanged."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v) for k, v in value.items())
    return False


def _fallback(value: Any) -> Any:
    if is_dataframe(value):
        return dataframe_summary(value)
    if _numpy_scalar(value):
        return value.item()
    return _truncate(repr(value), 500)


def _jsonable(value: Any) -> Any:
    """Convert to JSON types (datetimes, sets, dataclasses, NaN -> null); unknown objects become repr text."""
    try:
        return pydantic_core.to_jsonable_python(value, inf_nan_mode="null", fallback=_fallback)
    except (ValueError, TypeError, RecursionError, pydantic_core.PydanticSerializationError):
        return _truncate(repr(value))


@dataclass
class ToolResult:
    """A tool's result plus media the model should see (a chart, a page): FunctionResponse.parts."""

    value: Any
    media: list[Blob] = field(default_factory=list)


def result_to_response(value: Any) -> dict:
    """The dict for FunctionResponse.response from whatever a tool returned."""
    if isinstance(value, ToolResult):
        return result_to_response(value.value)
    if isinstance(value, pydantic.BaseModel):
        dumped = value.model_dump(mode="json")
        if not _is_plain_json(dumped):  # model_dump keeps inf/nan, which JSON cannot carry
            dumped = _jsonable(dumped)
        return dumped if isinstance(dumped, dict) else {"result": dumped}
    if is_dataframe(value):
        return {"result": dataframe_summary(value)}
    if isinstance(value, dict):
        if _is_plain_json(value):
            return value
        converted = _jsonable(value)
        return converted if isinstance(converted, dict) else {"result": converted}
    if value is None or isinstance(value, (str, bool, int, float, list, tuple)):
        return {"result": value if _is_plain_json(value) else _jsonable(value)}
    if _numpy_scalar(value):
        return {"result": _jsonable(value.item())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"result": _jsonable(value)}
    return {"result": _truncate(repr(value))}


def split_media(value: Any) -> tuple[Any, list[types.FunctionResponsePart]]:
    """A tool's result without its Blobs, and the Blobs as parts of the functionResponse.

    A tool shows the model an image (or a PDF) by returning a Blob, alone or in a list with other
    items, or a ToolResult(value, media=[Blob, ...]); the bytes travel in `functionResponse.parts` (Gemini's multimodal function responses), the
    rest is the JSON `response`. History and the transcript keep the response readable without them.
    """
    if isinstance(value, ToolResult):  # the explicit form: a value and the media beside it
        return value.value, _media_parts(value.media)
    items = value if isinstance(value, (list, tuple)) else [value]
    blobs = [item for item in items if isinstance(item, Blob)]
    if not blobs:
        return value, []
    others = [item for item in items if not isinstance(item, Blob)]
    rest = others[0] if len(others) == 1 else others or ", ".join(
        f"{b.name or 'data'} ({b.mime_type}, {len(b.data)} bytes) is attached" for b in blobs)
    return rest, _media_parts(blobs)


def _media_parts(blobs: list[Blob]) -> list[types.FunctionResponsePart]:
    return [types.FunctionResponsePart(inline_data=types.FunctionResponseBlob(
        mime_type=b.mime_type, data=b.data, display_name=b.name)) for b in blobs]
