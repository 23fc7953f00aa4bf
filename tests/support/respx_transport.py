"""respx for the client's transport: ``respx.mock(using="aiohttp")`` answers the requests the
client would send through aiohttp, before a socket is opened.

respx's default mocker patches httpcore, which the client no longer uses. Its ``httpx`` mocker
hands back the mocked ``httpx.Response`` already read, which the client cannot stream raw (it
reads bodies raw to cap them). This one answers at ``AiohttpTransport.handle_async_request``
with a fresh response over the mocked one's raw bytes, as a real transport would.
"""

from __future__ import annotations

from typing import ClassVar

import httpx
from respx.mocks import AbstractRequestMocker

MOCKER = "aiohttp"


class AiohttpTransportMocker(AbstractRequestMocker):
    """Registered with respx on import, under the name ``MOCKER``."""

    name = MOCKER
    targets: ClassVar[list[str]] = ["exporter.api.transport.aiohttp_transport.AiohttpTransport"]
    target_methods: ClassVar[list[str]] = ["handle_async_request"]

    @classmethod
    def to_httpx_request(cls, **kwargs: object) -> httpx.Request:
        request = kwargs["request"]
        assert isinstance(request, httpx.Request)
        return request

    @classmethod
    async def from_async_httpx_response(
        cls, httpx_response: httpx.Response, target: object, **kwargs: object
    ) -> httpx.Response:
        return httpx.Response(
            httpx_response.status_code,
            headers=httpx_response.headers.raw,
            stream=httpx_response.stream,
            extensions=httpx_response.extensions,
        )
