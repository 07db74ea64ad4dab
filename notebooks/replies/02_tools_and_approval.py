"""Scripted model replies for 02_tools_and_approval.ipynb, one per request, in order.

What gemini-2.5-flash does here: a function call, then (after the tool's result) a short answer.
"""
from agy_jupyter.testing import Chunk, Reply, Usage

EMAIL_BODY = ("Hi team,\n\n250 EUR is 270.50 USD at today's rate of 1.082 USD per euro.\n\nBest regards")

REPLIES = [
    # "What is 250 euros in US dollars?"
    Reply(chunks=[Chunk.thought("**Looking up the rate**\n\nI need the EUR to USD rate; the exchange_rate "
                                "tool gives it."),
                  Chunk.function_call("exchange_rate", {"base": "EUR", "quote": "USD"})],
          usage=Usage(prompt=212, output=18, thoughts=44), ttft=0.7),
    Reply.text("250 euros is **270.50 US dollars**, at a rate of 1.082 USD per euro (250 × 1.082).",
               chunks=3, delay=0.06, usage=Usage(prompt=268, output=31, thoughts=0)),
    # "Please email that result to team@example.com."
    Reply(chunks=[Chunk.function_call("send_email", {"to": "team@example.com", "subject": "250 EUR in USD",
                                                     "body": EMAIL_BODY})],
          usage=Usage(prompt=316, output=52, thoughts=30), ttft=0.6),
    Reply.text("Done: I emailed the result to team@example.com with the subject \"250 EUR in USD\".",
               chunks=2, delay=0.06, usage=Usage(prompt=382, output=22)),
    # "Now send the amount in British pounds to lena@example.com, and to my private address bob@gmail.com."
    Reply(chunks=[Chunk.function_call("exchange_rate", {"base": "EUR", "quote": "GBP"})],
          usage=Usage(prompt=430, output=17, thoughts=62), ttft=0.8),
    Reply(chunks=[Chunk.function_calls([
        {"name": "send_email", "args": {"to": "lena@example.com", "subject": "250 EUR in GBP",
                                        "body": "Hi Lena,\n\n250 EUR is 214.25 GBP (0.857 GBP per euro).\n\nBest regards"}},
        {"name": "send_email", "args": {"to": "bob@gmail.com", "subject": "250 EUR in GBP",
                                        "body": "Hi Bob,\n\n250 EUR is 214.25 GBP (0.857 GBP per euro).\n\nBest regards"}}])],
          usage=Usage(prompt=470, output=96, thoughts=25), ttft=0.7),
    Reply.text("250 euros is **214.25 British pounds** (0.857 GBP per euro).\n\n"
               "- Sent to **lena@example.com**.\n"
               "- **Not sent** to bob@gmail.com: only addresses at example.com may receive email. "
               "If you need a copy there, please forward it yourself.",
               chunks=4, delay=0.06, usage=Usage(prompt=611, output=64)),
    # mailer: "Send a one-line hello to team@example.com."
    Reply(chunks=[Chunk.function_call("send_email", {"to": "team@example.com", "subject": "Hello",
                                                     "body": "Hello team, hope you are having a good day!"})],
          usage=Usage(prompt=98, output=34, thoughts=21), ttft=0.6),
    Reply.text("I couldn't send the email: the call needed your approval, and nobody could approve it in this "
               "session. To let it run, create the agent with `--policy allow`, or set "
               "`%config AgyMagics.headless_approval = 'allow'`.",
               chunks=3, delay=0.06, usage=Usage(prompt=190, output=52)),
]
