"""Tests for agy_jupyter.agent.content: blobs, mime sniffing, DataFrame summaries, prompt parts."""
import base64
import os
import subprocess
import sys
import types as pytypes
from pathlib import Path

import pandas as pd
import pytest
from google.genai import types

from agy_jupyter.agent.content import (
    Blob,
    dataframe_summary,
    file,
    image,
    is_dataframe,
    prompt_preview,
    quick_parts,
    sniff_mime_type,
    to_parts,
)
from agy_jupyter.runtime.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
GIF = b"GIF89a" + b"\x00" * 20
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20
PDF = b"%PDF-1.7\n" + b"\x00" * 20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def big_df():
    n = 10_000
    return pd.DataFrame({
        "id": range(n),
        "score": [i / 7 for i in range(n)],
        "name": [f"name_{i}" for i in range(n)],
    })


# --- blobs and mime types --------------------------------------------------------------


@pytest.mark.parametrize(
    "data, mime",
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (b"GIF87a....", "image/gif"),
     (WEBP, "image/webp"), (PDF, "application/pdf"), (b"hello", None), (b"", None)],
)
def test_sniff_mime_type(data, mime):
    assert sniff_mime_type(data) == mime


def test_image_from_bytes_sniffs_or_uses_given_type():
    assert image(PNG) == Blob(data=PNG, mime_type="image/png")
    assert image(b"raw", mime_type="image/heic").mime_type == "image/heic"
    assert image(bytearray(JPEG)).data == JPEG


def test_bytes_without_detectable_type_need_mime_type():
    with pytest.raises(ConfigError, match="mime_type="):
        file(b"just some bytes")


def test_image_rejects_non_image():
    with pytest.raises(ConfigError, match="not an image"):
        image(PDF)


def test_file_from_bytes():
    assert file(PDF).mime_type == "application/pdf"
    assert file(b"a,b\n1,2\n", mime_type="text/csv") == Blob(b"a,b\n1,2\n", "text/csv")


def test_from_path_uses_extension(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    blob = Blob.from_path(path)
    assert blob == Blob(data=b"hello", mime_type="text/plain", name="notes.txt")
    assert file(str(path)).mime_type == "text/plain"


def test_from_path_sniffs_when_extension_unknown(tmp_path):
    path = tmp_path / "picture.unknownext"
    path.write_bytes(PNG)
    assert image(path).mime_type == "image/png"


def test_from_path_unknown_type_says_how_to_pass_mime_type(tmp_path):
    path = tmp_path / "data.unknownext"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ConfigError) as info:
        Blob.from_path(path)
    assert "cannot tell the mime type" in str(info.value)
    assert "mime_type=" in str(info.value)
    assert file(path, mime_type="application/octet-stream").mime_type == "application/octet-stream"


def test_from_path_unreadable(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Blob.from_path(tmp_path / "missing.png")
    with pytest.raises(ConfigError, match="cannot read"):
        file(tmp_path)  # a directory


def test_blob_repr_hides_bytes():
    text = repr(Blob(PNG * 100, "image/png", "x.png"))
    assert "size=2800" in text and "\\x89" not in text


def test_image_rejects_other_types():
    with pytest.raises(ConfigError, match="takes bytes or a path"):
        image(123)


# --- DataFrames -------------------------------------------------------------------------


def test_dataframe_summary_is_compact(big_df):
    text = dataframe_summary(big_df)
    assert len(text) < 4000
    assert text.startswith("DataFrame: 10000 rows x 3 columns")
    assert "id: int64 (10000 non-null)" in text
    assert "score: float64" in text
    assert "name: object" in text or "name: str" in text
    assert "name_4" in text
    assert "name_9999" not in text and "9999" not in text


def test_dataframe_summary_respects_limits(big_df):
    wide = pd.DataFrame({f"col{i}": [i] * 3 for i in range(50)})
    text = dataframe_summary(wide, max_cols=5)
    assert "col4: int64" in text
    assert "col10:" not in text
    assert "... and 45 more columns" in text
    assert len(dataframe_summary(big_df, max_chars=200)) <= 200
    assert "truncated" in dataframe_summary(big_df, max_chars=200)
    head_lines = dataframe_summary(big_df, max_rows=2).split("First 2 rows:\n")[1].splitlines()
    assert len(head_lines) == 3  # header + 2 rows


def test_dataframe_summary_counts_nulls():
    df = pd.DataFrame({"a": [1.0, None, 3.0]})
    assert "a: float64 (2 non-null)" in dataframe_summary(df)


def test_series_summary():
    s = pd.Series(range(10_000), name="values")
    text = dataframe_summary(s)
    assert text.startswith("Series: 10000 rows, dtype: int64, name: values (10000 non-null)")
    assert "9999" not in text


def test_is_dataframe():
    assert is_dataframe(pd.DataFrame({"a": [1]}))
    assert is_dataframe(pd.Series([1]))
    assert not is_dataframe([1, 2])
    assert not is_dataframe({"a": [1]})


def test_is_dataframe_does_not_import_pandas():
    code = (
        "import sys\n"
        "from agy_jupyter.agent import content\n"
        "assert 'pandas' not in sys.modules, 'pandas imported by content'\n"
        "assert content.is_dataframe(object()) is False\n"
        "assert content.to_parts('hi')[0].text == 'hi'\n"
        "assert 'pandas' not in sys.modules, 'pandas imported by use'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- to_parts -------------------------------------------------------------------------


def test_text_prompt():
    parts = to_parts("Hello")
    assert len(parts) == 1 and parts[0].text == "Hello"


def test_blob_prompt():
    (part,) = to_parts(image(PNG))
    assert part.inline_data.mime_type == "image/png"
    assert part.inline_data.data == PNG


def test_dataframe_prompt(big_df):
    (part,) = to_parts(big_df)
    assert part.text == dataframe_summary(big_df)


def test_part_passes_through():
    part = types.Part(text="already a part")
    assert to_parts(part) == [part]


def test_mixed_list_keeps_order_and_drops_blank_text(big_df):
    parts = to_parts(["Describe:", image(PNG), "  ", ("and", file(PDF)), big_df["id"]])
    assert [p.text for p in parts] == ["Describe:", None, "and", None, dataframe_summary(big_df["id"])]
    assert parts[1].inline_data.mime_type == "image/png"
    assert parts[3].inline_data.mime_type == "application/pdf"


def test_quick_parts_converts_light_prompts_and_leaves_heavy_ones_for_a_worker_thread(big_df, fake_pil):
    assert quick_parts(["Describe:", image(PNG)]) == to_parts(["Describe:", image(PNG)])
    assert quick_parts(["Describe:", big_df]) is None
    assert quick_parts(_FakePILImage()) is None
    with pytest.raises(ConfigError, match="unsupported prompt content of type int"):
        quick_parts([big_df, 42])  # a mistake is still reported at once, heavy content or not
    with pytest.raises(ConfigError, match="the prompt is empty"):
        quick_parts(["  "])


@pytest.mark.parametrize("prompt", ["", "   \n", [], (), ["", " "], None])
def test_empty_prompt(prompt):
    with pytest.raises(ConfigError, match="the prompt is empty"):
        to_parts(prompt)


def test_empty_blob_rejected():
    with pytest.raises(ConfigError, match="empty"):
        to_parts(Blob(b"", "image/png", "blank.png"))


@pytest.mark.parametrize("bad", [42, b"raw bytes", {"a": 1}, object()])
def test_unsupported_prompt_type(bad):
    with pytest.raises(ConfigError) as info:
        to_parts(["text", bad])
    message = str(info.value)
    assert f"unsupported prompt content of type {type(bad).__name__}" in message
    assert "agy_jupyter.image(...)" in message and "DataFrame" in message


class _FakePILImage:
    """Stands in for PIL.Image.Image (PIL is not installed in the test venv)."""

    size = (3, 2)

    def save(self, fp, format):
        assert format == "PNG"
        fp.write(PNG)


@pytest.fixture
def fake_pil(monkeypatch):
    module = pytypes.ModuleType("PIL.Image")
    module.Image = _FakePILImage
    monkeypatch.setitem(sys.modules, "PIL.Image", module)
    return module


def test_pil_image_prompt_encoded_as_png(fake_pil):
    (part,) = to_parts(_FakePILImage())
    assert part.inline_data.mime_type == "image/png"
    assert part.inline_data.data == PNG
    assert image(_FakePILImage()).mime_type == "image/png"
    assert prompt_preview(_FakePILImage()) == "[image 3x2]"


def test_pil_like_object_without_pil_is_unsupported(monkeypatch):
    monkeypatch.delitem(sys.modules, "PIL.Image", raising=False)
    with pytest.raises(ConfigError, match="unsupported prompt content"):
        to_parts(_FakePILImage())


def test_parts_accepted_by_sdk_content_and_serialised_as_sent():
    content = types.Content(role="user", parts=to_parts(["hi", image(PNG)]))
    sent = content.model_dump(mode="json", exclude_none=True)
    assert sent["role"] == "user"
    assert sent["parts"][0] == {"text": "hi"}
    assert sent["parts"][1]["inline_data"]["mime_type"] == "image/png"
    assert base64.b64decode(sent["parts"][1]["inline_data"]["data"]) == PNG


# --- prompt_preview -----------------------------------------------------------------------


def test_preview_text_truncated_and_single_line():
    assert prompt_preview("hello\n  world") == "hello world"
    long = prompt_preview("x" * 500, limit=50)
    assert len(long) == 50 and long.endswith("…")


def test_preview_blobs_and_frames(big_df):
    blob = Blob(b"\x00" * 12_595, "image/png")
    assert prompt_preview(blob) == "[image/png 12.3 KB]"
    assert prompt_preview(Blob(b"abc", "text/plain", "a.txt")) == "[text/plain 3 B a.txt]"
    assert prompt_preview(Blob(b"\x00" * (3 * 1024 * 1024), "application/pdf")) == "[application/pdf 3.0 MB]"
    assert prompt_preview(big_df) == "[DataFrame 10000x3]"
    assert prompt_preview(big_df["id"]) == "[Series 10000]"


def test_preview_list_and_parts():
    preview = prompt_preview(["Look at", image(PNG), types.Part(text="this")])
    assert preview == f"Look at [image/png {len(PNG)} B] this"
    assert prompt_preview(types.Part.from_bytes(data=PDF, mime_type="application/pdf")) == f"[application/pdf {len(PDF)} B]"


def test_preview_never_raises_on_odd_input():
    assert prompt_preview(42) == "[int]"
    assert prompt_preview(None) == ""
