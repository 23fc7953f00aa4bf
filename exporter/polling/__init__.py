"""Polling in steps: ``read`` a target's window, ``derive`` what its jobs mean, ``publish`` a
snapshot, on the ``schedule`` that decides each poll's outcome; beside it, the quota poll with its
own schedule, snapshot and health.

Reads ``exporter.config`` and ``exporter.api``; reports through ``schedule.observer.PollObserver``
and never imports the metrics or the web side.
"""
