'''Scripted model replies for 03_dataframe.ipynb, one per request, in order.

What gemini-3-flash-preview does here: tool calls (with thought signatures, as Gemini 3 sends them), then
an answer that uses the tools' results; the chart description matches the chart the code draws from
data/sales.csv.
'''
from agy_jupyter.testing import Chunk, Reply, Usage

PLOT_CODE = """\
import matplotlib.pyplot as plt

weekly = sales.pivot_table(index="week", columns="region", values="revenue", aggfunc="sum")
ax = weekly.plot(figsize=(8, 4), marker="o", title="Weekly revenue by region")
ax.set_xlabel("week")
ax.set_ylabel("revenue")
plt.tight_layout()"""

OVERVIEW = """\
You have one DataFrame, **`sales`**: 156 rows and 6 columns, one row per week, region and product.

- **Time span:** 26 weeks, from 2026-01-05 to 2026-06-29 (`week` is already parsed as a date).
- **Regions and products:** North, South and West; Basic and Pro. That is 26 × 3 × 2 = 156 rows, so no \
week is missing for any combination.
- **Prices:** `unit_price` only takes two values, 19.0 (Basic) and 49.0 (Pro).
- **Revenue:** between 637 and 3,553 per row, 1,998 on average.

Things to watch out for:

1. **Missing values:** `units` and `revenue` are empty in 4 rows (the same rows). If you sum revenue per \
week, those weeks will look lower than they were. Decide whether to drop, fill or flag them first.
2. **`units` is a float column** because of those gaps; convert it with `astype("Int64")` if you want \
whole numbers.
3. `revenue` is exactly `units × unit_price`, so it carries no extra information; keep that in mind if \
you model it.
"""

CHART = """\
Here is the chart. What stands out:

- **North grows steadily**, from about 4,300 a week in January to about 6,700 at the end of June, \
roughly +55 % over the half-year.
- **South is flat** at around 3,500 a week.
- **West drops to about 1,400 a week for all four weeks of April**, then recovers in May. That looks like \
a real drop, not a data problem: all West rows for April are present.
- The **single-week dips** (West on 16 Feb, 9 Mar and 18 May, South on 1 Jun) are different: they are \
exactly the weeks with a missing `units` value, so only one product was counted. Those are gaps in the \
data, not falls in sales.

I left the pivot table in the variable `weekly` (weeks × regions) if you want to dig further. I am not \
sure what caused the April drop in West; a supply or stock issue would fit the pattern.
"""

REPLIES = [
    Reply(chunks=[Chunk.thought("**Finding the data**\n\nI should list the notebook's variables first."),
                  Chunk.function_call("list_variables", {}, thought_signature="sig-list-1")],
          usage=Usage(prompt=612, output=12, thoughts=35), ttft=0.9),
    Reply(chunks=[Chunk.function_call("inspect_variable", {"name": "sales"}, thought_signature="sig-inspect-1")],
          usage=Usage(prompt=660, output=16, thoughts=22), ttft=0.7),
    Reply(chunks=[Chunk.thought("**Summarising the table**\n\nShape, span, categories, the two prices and the "
                                "4 missing values are what matter.", thought_signature="sig-summary-1"),
                  *[Chunk.text(OVERVIEW[i:i + 300]) for i in range(0, len(OVERVIEW), 300)]],
          usage=Usage(prompt=2241, output=301, thoughts=118), delay=0.08, ttft=1.1),
    Reply(chunks=[Chunk.thought("**Planning the chart**\n\nA pivot of revenue by week and region, one line per "
                                "region."),
                  Chunk.function_call("run_python", {"code": PLOT_CODE}, thought_signature="sig-plot-1")],
          usage=Usage(prompt=2590, output=98, thoughts=64), ttft=1.0),
    Reply(chunks=[Chunk.thought("**Reading the chart**\n\nNorth rises, South is flat, West has a four-week "
                                "trough in April and some one-week dips that line up with the missing values.",
                                thought_signature="sig-read-1"),
                  *[Chunk.text(CHART[i:i + 300]) for i in range(0, len(CHART), 300)]],
          usage=Usage(prompt=3912, output=276, thoughts=240), delay=0.08, ttft=1.4),
]
