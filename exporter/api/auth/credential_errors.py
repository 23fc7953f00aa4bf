"""The credential package's error texts, made safe to log: no response body, no URI's secrets.

The package quotes whole response bodies in its errors (``..., result: {body}``), and the
default chain joins its sources' errors into one list. A body is hostile text that may hold any
quote or bracket, so no one can say where it ends: everything from the first body marker on is
withheld, whatever follows it. URIs keep only their scheme, host and port.
"""

from __future__ import annotations

import re

from exporter.config.uris import mask_uris_in

# Where the package's error texts start quoting a response body.
RESPONSE_BODY = re.compile(r"\b(?:result|response):|failed to refresh OAuth token:")
MAX_MESSAGE_CHARS = 1000


def safe_message(error: BaseException) -> str:
    """The package's error text up to the first response body, its URIs masked (secrets)."""
    text = str(error) or type(error).__name__
    body = RESPONSE_BODY.search(text)
    if body is not None:
        text = text[: body.end()] + " (withheld)"
    text = " ".join(mask_uris_in(text).split())
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 3] + "..."
