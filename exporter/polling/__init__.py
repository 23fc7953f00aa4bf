"""Polling: read each target's window, aggregate it, publish a snapshot, on a schedule; beside
it, the quota poll with its own schedule, snapshot and health.

Reads ``exporter.config`` and ``exporter.api``; reports through ``observer.PollObserver``
and never imports the metrics or the web side.
"""
