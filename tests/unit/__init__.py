"""Unit tests: one module at a time, in process; the cloud API mocked with respx."""
