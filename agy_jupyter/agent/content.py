"""User prompt content (text, images, files, DataFrames) turned into google-genai parts."""
from __future__ import annotations

import io
import mimetypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.genai import types

from agy_jupyter.runtime.errors import ConfigError

__all__ = ["Blob", "image", "file", "dataframe_summary", "is_dataframe", "to_parts", "quick_parts", "prompt_preview"]

# Magic bytes for the formats people paste most often; checked in order.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)

_UNSUPPORTED_HINT = "pass text, agy_jupyter.image(...), agy_jupyter.file(...), or a DataFrame"


def sniff_mime_type(data: bytes) -> str | None:
    """The mime type of PNG, JPEG, GIF, WEBP or PDF data from its first bytes, else None."""
    head = bytes(data[:16])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    return None


@dataclass(frozen=True)
class Blob:
    """An image or file to send to the model: bytes plus their mime type."""

    data: bytes
    mime_type: str
    name: str | None = None

    def __repr__(self) -> str:  # never dump the bytes into a notebook cell
        name = f", name={self.name!r}" if self.name else ""
        return f"Blob(mime_type={self.mime_type!r}, size={len(self.data)}{name})"

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], mime_type: str | None = None) -> "Blob":
        """Read a file; the mime type comes from `mime_type`, the extension, or the magic bytes."""
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read {str(p)!r}: {e.strerror or e}") from e
        mime = mime_type or mimetypes.guess_type(p.name)[0] or sniff_mime_type(data)
        if not mime:
            raise ConfigError(
                f"cannot tell the mime type of {str(p)!r}",
                hint="pass it explicitly, e.g. agy_jupyter.file(path, mime_type='text/plain')",
            )
        return cls(data=data, mime_type=mime, name=p.name)


def _blob(data_or_path: Any, mime_type: str | None, kind: str) -> Blob:
    if isinstance(data_or_path, Blob):
        return Blob(data_or_path.data, mime_type, data_or_path.name) if mime_type else data_or_path
    if isinstance(data_or_path, (str, os.PathLike)):
        return Blob.from_path(data_or_path, mime_type)
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        data = bytes(data_or_path)
        mime = mime_type or sniff_mime_type(data)
        if not mime:
            raise ConfigError(
                f"cannot tell the mime type of these {len(data)} bytes",
                hint=f"pass it explicitly, e.g. agy_jupyter.{kind}(data, mime_type='image/png')",
            )
        return Blob(data=data, mime_type=mime)
    if _is_pil_image(data_or_path):
        return _pil_to_blob(data_or_path)
    raise ConfigError(f"agy_jupyter.{kind}() takes bytes or a path, not {type(data_or_path).__name__}")


def image(data_or_path: Any, mime_type: str | None = None) -> Blob:
    """An image from bytes, a path, or a PIL image; bytes without `mime_type` are sniffed."""
    blob = _blob(data_or_path, mime_type, "image")
    if not blob.mime_type.startswith("image/"):
        raise ConfigError(
            f"{blob.name or 'the data'} is {blob.mime_type}, not an image",
            hint="use agy_jupyter.file(...) for other files",
        )
    return blob


def file(data_or_path: Any, mime_type: str | None = None) -> Blob:
    """A file (PDF, text, audio, ...) from bytes or a path; bytes without `mime_type` are sniffed."""
    return _blob(data_or_path, mime_type, "file")


# --- DataFrames -------------------------------------------------------------


def is_dataframe(obj: Any) -> bool:
    """True for a pandas DataFrame or Series; never imports pandas itself."""
    pd = sys.modules.get("pandas")
    if pd is None:  # nobody imported pandas, so obj cannot be a pandas object
        return False
    kinds = tuple(k for k in (getattr(pd, "DataFrame", None), getattr(pd, "Series", None)) if isinstance(k, type))
    return bool(kinds) and isinstance(obj, kinds)


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    marker = "\n... [truncated]"
    return text[: max(0, max_chars - len(marker))] + marker


def dataframe_summary(df: Any, max_rows: int = 5, max_cols: int = 20, max_chars: int = 4000) -> str:
    """A compact text summary of a DataFrame or Series: shape, dtypes, non-null counts, first rows."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(df, pd.Series):
        label = f", name: {df.name}" if df.name is not None else ""
        lines = [
            f"Series: {len(df)} rows, dtype: {df.dtype}{label} ({int(df.count())} non-null)",
            f"First {min(max_rows, len(df))} rows:",
            df.head(max_rows).to_string(),
        ]
        return _cap("\n".join(lines), max_chars)

    n_rows, n_cols = df.shape
    shown = df.iloc[:, :max_cols]
    counts = shown.count()  # per column; only for the columns we list
    lines = [f"DataFrame: {n_rows} rows x {n_cols} columns", "Columns:"]
    for i, (col, dtype) in enumerate(shown.dtypes.items()):
        lines.append(f"  {col}: {dtype} ({int(counts.iloc[i])} non-null)")
    if n_cols > max_cols:
        lines.append(f"  ... and {n_cols - max_cols} more columns")
    lines.append(f"First {min(max_rows, n_rows)} rows:")
    lines.append(df.head(max_rows).to_string(max_cols=max_cols, max_colwidth=50))
    return _cap("\n".join(lines), max_chars)


# --- PIL (optional) -----------------------------------------------------------


def _is_pil_image(obj: Any) -> bool:
    pil = sys.modules.get("PIL.Image")  # only if the user already imported PIL
    cls = getattr(pil, "Image", None) if pil is not None else None
    return isinstance(cls, type) and isinstance(obj, cls)


def _pil_to_blob(img: Any) -> Blob:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return Blob(data=buf.getvalue(), mime_type="image/png")


# --- prompts ------------------------------------------------------------------


def _flatten(prompt: Any) -> list[Any]:
    if isinstance(prompt, (list, tuple)):
        return [item for part in prompt for item in _flatten(part)]
    return [] if prompt is None else [prompt]


_HEAVY = object()  # stands for an item whose conversion is real work (see quick_parts)


def _to_part(item: Any, *, defer_heavy: bool = False) -> Any:
    """One prompt item as a Part; None for whitespace-only text (dropped); _HEAVY when deferred."""
    if defer_heavy and (is_dataframe(item) or _is_pil_image(item)):
        return _HEAVY
    if isinstance(item, str):
        return types.Part(text=item) if item.strip() else None
    if isinstance(item, types.Part):
        return item
    if isinstance(item, Blob):
        if not item.data:
            raise ConfigError(f"{item.name or 'the ' + item.mime_type + ' blob'} is empty (0 bytes)")
        return types.Part.from_bytes(data=item.data, mime_type=item.mime_type)
    if is_dataframe(item):
        return types.Part(text=dataframe_summary(item))
    if _is_pil_image(item):
        blob = _pil_to_blob(item)
        return types.Part.from_bytes(data=blob.data, mime_type=blob.mime_type)
    raise ConfigError(f"unsupported prompt content of type {type(item).__name__}; {_UNSUPPORTED_HINT}")


def to_parts(prompt: Any) -> list[types.Part]:
    """Turn a prompt (text, Blob, DataFrame, PIL image, Part, or a list of them) into Parts."""
    parts = [p for p in (_to_part(item) for item in _flatten(prompt)) if p is not None]
    if not parts:
        raise ConfigError("the prompt is empty")
    return parts


def quick_parts(prompt: Any) -> list[types.Part] | None:
    """`to_parts(prompt)` when that is cheap; None when it is real work (summarising a DataFrame,
    encoding an image), which belongs on a worker thread, not an event loop.

    Either way a prompt that to_parts would refuse raises ConfigError here, at once.
    """
    parts = [p for p in (_to_part(item, defer_heavy=True) for item in _flatten(prompt)) if p is not None]
    if not parts:
        raise ConfigError("the prompt is empty")
    return None if any(p is _HEAVY for p in parts) else parts


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _preview_item(item: Any) -> str:
    if isinstance(item, str):
        return " ".join(item.split())
    if isinstance(item, Blob):
        name = f" {item.name}" if item.name else ""
        return f"[{item.mime_type} {_size(len(item.data))}{name}]"
    if is_dataframe(item):
        if getattr(item, "ndim", 2) == 1:
            return f"[Series {len(item)}]"
        rows, cols = item.shape
        return f"[DataFrame {rows}x{cols}]"
    if isinstance(item, types.Part):
        if item.text is not None:
            return " ".join(item.text.split())
        if item.inline_data is not None:
            data = item.inline_data.data or b""
            return f"[{item.inline_data.mime_type} {_size(len(data))}]"
        if item.file_data is not None:
            return f"[{item.file_data.mime_type or 'file'} {item.file_data.file_uri}]"
        return "[part]"
    if _is_pil_image(item):
        width, height = item.size
        return f"[image {width}x{height}]"
    return f"[{type(item).__name__}]"


def prompt_preview(prompt: Any, limit: int = 200) -> str:
    """A short one-line description of a prompt for logs and history listings."""
    text = " ".join(s for s in (_preview_item(i) for i in _flatten(prompt)) if s)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text
