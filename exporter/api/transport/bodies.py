"""A response body read whole within a byte cap that holds after decompression too.

httpx inflates each ``Content-Encoding`` layer of a chunk in full before its caller sees the
bytes, so a 2 KB answer labelled ``gzip, gzip`` becomes a gigabyte before any cap is checked.
Here the raw bytes are read and inflated by zlib with a bounded output: no more than the cap
(plus one chunk of slack) is ever allocated. One ``gzip`` or ``deflate`` layer is what the
API sends; a stacked or unknown encoding is refused before a byte is inflated.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from exporter.api.errors import ApiError

# What the client advertises in Accept-Encoding, and all it will inflate.
ACCEPTED_ENCODINGS = "gzip, deflate"
# Inflated this much at a time: zlib builds its output of blocks joined at the end (twice the
# size at the peak), so small steps keep the peak near the bytes kept.
INFLATE_STEP = 256 * 1024
_WINDOW_BITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def content_coding(header: str | None, status: int) -> str | None:
    """The one coding to undo (``gzip``/``deflate``) or None; ApiError for stacked or unknown."""
    codings = [part.strip().lower() for part in (header or "").split(",")]
    codings = [coding for coding in codings if coding not in ("", "identity")]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in _WINDOW_BITS:
        shown = header if len(header or "") <= 40 else f"{(header or '')[:37]}..."
        raise ApiError(
            "invalid_response",
            f"refused Content-Encoding {shown!r}: one gzip or deflate layer at most",
            status=status,
        )
    return codings[0]


def _too_large(limit: int, status: int, what: str) -> ApiError:
    return ApiError(
        "invalid_response",
        f"response body larger than {limit // (1024 * 1024)} MiB{what}",
        status=status,
    )


async def read_bounded(
    raw: AsyncIterator[bytes], coding: str | None, limit: int, status: int
) -> bytes:
    """The body of ``raw`` (bytes as sent) undone from ``coding``, or ApiError past ``limit``.

    The cap counts decoded bytes and is enforced before they are allocated: zlib is asked for
    at most what is left of it (plus one byte, to tell "exactly full" from "over"), a step at
    a time.
    """
    inflater = zlib.decompressobj(_WINDOW_BITS[coding]) if coding else None
    chunks: list[bytes] = []
    size = 0
    received = 0
    async for chunk in raw:
        received += len(chunk)
        if inflater is None:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, status, "")
            chunks.append(chunk)
            continue
        pending = chunk
        while pending:
            try:
                out = inflater.decompress(pending, min(limit - size + 1, INFLATE_STEP))
            except zlib.error as error:
                raise ApiError(
                    "invalid_response",
                    f"response body does not decode as its Content-Encoding {coding} says: {error}",
                    status=status,
                ) from None
            size += len(out)
            if size > limit:
                raise _too_large(limit, status, " once decompressed")
            chunks.append(out)
            pending = inflater.unconsumed_tail
    if inflater is not None and received and not inflater.eof:
        raise ApiError(
            "invalid_response",
            f"response body ends inside its {coding} stream (truncated)",
            status=status,
        )
    return b"".join(chunks)
