"""Prometheus exporter for Alibaba Cloud MaxCompute's GetRunningJobs API."""

__version__ = "0.1.0"
