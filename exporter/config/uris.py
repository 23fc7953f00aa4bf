"""A URI as it may be shown: scheme, host and port; userinfo, path, query and fragment masked.

Any of those parts can carry a secret (``https://user:pass@host/creds/<token>?sig=...``), so
``--check-config`` and log lines show only where a URI points, never what it hands over.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Prometheus shows its own secrets as "<secret>" in /api/v1/status/config; so do we.
MASK = "<secret>"
# A URI inside free text (an error message): up to the first blank or quote (any other
# character may be part of a password), less the punctuation that ends a clause.
URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*?(?=[,;.)\]]*(?:[\s'\"]|$))")


def masked_uri(uri: str) -> str:
    """``uri`` with every part past the host and port masked; ``<secret>`` if it will not parse."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not parts.hostname:
        return MASK
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = f"{parts.scheme}://"
    if "@" in parts.netloc:
        shown += f"{MASK}@"
    shown += host if port is None else f"{host}:{port}"
    if parts.path not in ("", "/"):
        shown += f"/{MASK}"
    if parts.query:
        shown += f"?{MASK}"
    if parts.fragment:
        shown += f"#{MASK}"
    return shown


def mask_uris_in(text: str) -> str:
    """``text`` with every URI in it masked as ``masked_uri`` does."""
    return URI_IN_TEXT.sub(lambda match: masked_uri(match.group(0)), text)
