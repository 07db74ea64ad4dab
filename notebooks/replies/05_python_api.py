"""Scripted model replies for 05_python_api.ipynb, chosen by the prompt (two agents ask at the same time).

`respond(request)` answers each request with the next unused reply whose key is in the request's last
user text. The 429 errors carry the details the real API sends (RetryInfo, QuotaFailure).
"""
import json

from agy_jupyter.testing import Reply, Usage

REVIEW = {
    "issues": [
        {"column": "customer_id", "problem": "Customer 102 appears twice with the same signup date.",
         "severity": "high", "fix": "Drop the duplicate row (df.drop_duplicates())."},
        {"column": "age", "problem": "One age is -1 (a placeholder, not a real age) and one is missing.",
         "severity": "high", "fix": "Set -1 to missing, then decide whether to impute or drop those rows."},
        {"column": "country", "problem": "'de' and 'DE' are the same country written differently.",
         "severity": "medium", "fix": "Normalise the case with .str.upper()."},
        {"column": "signup", "problem": "Dates are strings in two formats (2026-01-03 and 03/02/2026).",
         "severity": "medium", "fix": "Parse with pd.to_datetime and check the ambiguous day/month order."},
    ],
    "ready_for_analysis": False,
}

SCRIPT = [
    ("what does pandas' groupby do", Reply.text(
        "`groupby` splits a DataFrame into groups by the values of one or more columns, applies a function "
        "(such as `sum` or `mean`) to each group, and combines the results into a new DataFrame or Series.",
        chunks=3, delay=0.05, usage=Usage(prompt=24, output=44, thoughts=71))),
    ("Name three pandas methods", Reply.text(
        "- `isna()`: find the missing values\n"
        "- `dropna()`: remove rows or columns that contain them\n"
        "- `fillna()`: replace them with a value, or with the previous or next one\n",
        chunks=6, delay=0.05, usage=Usage(prompt=90, output=46, thoughts=40))),
    ("why missing values matter", Reply.text(
        "Missing values matter because most regression methods drop incomplete rows, which shrinks the sample "
        "and can bias the estimates when the values are not missing at random.",
        chunks=2, delay=0.05, usage=Usage(prompt=141, output=33, thoughts=58))),
    ("Missing values can bias a regression", Reply.text(
        "Les valeurs manquantes peuvent biaiser une régression si elles ne sont pas manquantes au hasard.",
        chunks=2, delay=0.05, usage=Usage(prompt=31, output=22))),
    ("Review this table", Reply.text(json.dumps(REVIEW, ensure_ascii=False), chunks=4, delay=0.05,
                                     usage=Usage(prompt=286, output=214, thoughts=305))),
    ("what does DataFrame.pivot_table do", Reply.error(
        429, retry_delay=2, quota_id="GenerateRequestsPerMinutePerProjectPerModel-FreeTier", quota_value=10,
        quota_metric="generativelanguage.googleapis.com/generate_content_free_tier_requests")),
    ("what does DataFrame.pivot_table do", Reply.text(
        "`pivot_table` reshapes a DataFrame into a spreadsheet-style table: it groups rows by the index and "
        "column keys you choose and aggregates the values in each cell (the mean by default).",
        chunks=3, delay=0.05, usage=Usage(prompt=182, output=41, thoughts=35))),
    *[("what does DataFrame.melt do", Reply.error(
        429, quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier", quota_value=250,
        quota_metric="generativelanguage.googleapis.com/generate_content_free_tier_requests"))] * 2,
]
_unused = list(SCRIPT)


def respond(request) -> Reply:
    for index, (key, reply) in enumerate(_unused):
        if key in request.last_user_text:
            del _unused[index]
            return reply
    raise LookupError(f"no scripted reply left for {request.last_user_text[:80]!r}")
