"""Scripted model replies for 04_several_agents.ipynb, one per request, in order.

The last reply (the long blog post) streams slowly on purpose: the notebook cancels it after a moment,
and the cassette keeps what had arrived by then.
"""
from agy_jupyter.testing import Reply, Usage

NOTES = """\
- **Price:** the subscription costs more than the value the customer gets from it.
- **Low usage:** customers stop using the product, often because onboarding never showed its value.
- **Poor support or bugs:** unresolved problems push customers to a competitor.
"""

NEWSLETTER = """\
Why do customers leave? Our research points to three usual suspects: a price that feels higher than the \
value, a product people stop using because they never saw what it could do, and problems that take too \
long to fix. The good news is that all three are in our hands, starting with a better first week for \
every new customer."""

EVIDENCE = ("Low usage has the strongest evidence: churn studies across subscription businesses consistently "
            "find that customers who are inactive in their first weeks cancel at several times the rate of "
            "active ones.")

POST = """\
# Keeping customers: three ways to reduce churn

Every subscription business loses customers. The question is not whether people leave, but why, and \
what we can do about it before they decide to go.

## 1. Show the value in the first week

Most customers who cancel never really started. They signed up, looked around, and did not find the \
one thing that would have made the product part of their routine. A guided first week, with a clear \
first success, changes that more than any discount.

## 2. Make the price easy to justify

When the bill arrives, customers ask whether it was worth it. Usage summaries, saved time and concrete \
results help them answer yes. Plans that fit smaller teams keep customers who would otherwise leave.

## 3. Fix problems fast

A bug that lingers for weeks is a reason to look elsewhere. Quick answers from support, and telling \
customers when their problem is fixed, turn a bad moment into trust.
"""

REPLIES = [
    Reply.text(NOTES, chunks=3, delay=0.08, ttft=0.6, usage=Usage(prompt=52, output=64, thoughts=88)),
    Reply.text(NEWSLETTER, chunks=4, delay=0.08, ttft=0.5, usage=Usage(prompt=131, output=83, thoughts=60)),
    Reply.text(EVIDENCE, chunks=2, delay=0.08, ttft=0.5, usage=Usage(prompt=147, output=41, thoughts=52)),
    Reply.text(POST, chunks=80, delay=0.25, ttft=0.6),
]
