"""Integration tests: the exporter, the simulator and real HTTP on loopback, parts together."""
