"""Unit tests: one module at a time, in process; the cloud API mocked with respx
(``respx.mock(using="aiohttp")``, see ``tests/support/respx_transport.py``)."""
