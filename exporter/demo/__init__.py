"""What ``--demo`` and the tests need: the API simulator, a moving workload, an STS stand-in.

Imported only by the wiring for ``--demo``, by ``python -m exporter.demo`` and by the
tests; it reads the API's wire constants and nothing above them.
"""
