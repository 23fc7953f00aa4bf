"""What ``api_requests_total``'s ``code`` label says of one request: a bounded set of values.

A hostile or broken API can answer with any of the 900 three-digit statuses; kept as they are,
each would be a series of its own until the next reload. The statuses a user acts on keep their
number; every other one folds into its class.
"""

from __future__ import annotations

# The statuses the API (or a proxy before it) answers with and a user tells apart.
KEPT_STATUS_CODES = frozenset({200, 400, 401, 403, 404, 429, 500, 502, 503, 504})
# Outcomes of a request that got no HTTP status.
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
# Sent, but the poll ended (its deadline, or shutdown) before the answer came.
CANCELLED = "cancelled"


def status_label(status: int) -> str:
    """``"429"`` for a kept status, ``"4xx"``/``"5xx"`` for another error, else ``"other"``."""
    if status in KEPT_STATUS_CODES:
        return str(status)
    if 400 <= status <= 499:
        return "4xx"
    if 500 <= status <= 599:
        return "5xx"
    return "other"
