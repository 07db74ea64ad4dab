"""Scripted model replies for 01_quickstart.ipynb, one per request, in order (see record_tutorials.py).

Written to be what gemini-2.5-flash answers to these prompts: a short thought summary, then Markdown.
"""
from agy_jupyter.testing import Chunk, Reply, Usage

SERIES_VS_FRAME = """\
A **Series** is one labelled column: a 1-D array of values with an index. A **DataFrame** is a table: \
several columns (each one a Series) that share the same index.

```python
import pandas as pd

s = pd.Series([3, 5, 8], name="price")                          # one column
df = pd.DataFrame({"price": [3, 5, 8], "qty": [1, 2, 1]})       # a table

df["price"]     # selecting one column of a DataFrame gives you a Series
```
"""

CONVERT = """\
Both directions are one call:

```python
# Series -> DataFrame
df = s.to_frame()               # one column, named after the Series ("price")
df = s.reset_index()            # the index becomes a column too

# DataFrame -> Series
s = df["price"]                 # pick a column
s = df.squeeze("columns")       # a one-column DataFrame becomes a Series
```

`to_frame(name="amount")` lets you rename the column on the way.
"""

CHECKLIST = """\
1. Check the shape, column names and dtypes (`df.shape`, `df.dtypes`).
2. Count missing values per column (`df.isna().sum()`) and decide: drop, fill or keep.
3. Look for duplicate rows (`df.duplicated().sum()`).
4. Parse dates and categories explicitly (`parse_dates=`, `astype("category")`).
5. Scan each numeric column's range for impossible values (`df.describe()`).
"""

REPLIES = [
    Reply(chunks=[Chunk.thought("**Contrasting Series and DataFrame**\n\nThe user wants a short comparison. "
                                "I'll give one sentence for each and a tiny example showing that a column "
                                "of a DataFrame is a Series."),
                  *[Chunk.text(piece) for piece in (SERIES_VS_FRAME[:120], SERIES_VS_FRAME[120:260],
                                                    SERIES_VS_FRAME[260:])]],
          usage=Usage(prompt=43, output=121, thoughts=58), delay=0.08, ttft=0.6),
    Reply(chunks=[Chunk.thought("**Showing the conversions**\n\nThey mean Series to DataFrame and back. "
                                "`to_frame`, `reset_index`, column selection and `squeeze` cover it."),
                  Chunk.text(CONVERT[:150]), Chunk.text(CONVERT[150:])],
          usage=Usage(prompt=180, output=117, thoughts=41), delay=0.08, ttft=0.5),
    Reply(chunks=[Chunk.text(CHECKLIST[:170]), Chunk.text(CHECKLIST[170:])],
          usage=Usage(prompt=318, output=104, thoughts=36), delay=0.08, ttft=0.5),
]
