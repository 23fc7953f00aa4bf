"""When and how a poll runs: the schedulers, the two pollers that decide each poll's outcome, and
the observer protocol through which they report upward.
"""
