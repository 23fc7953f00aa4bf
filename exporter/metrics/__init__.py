"""Metrics: families and HELP, collectors over the snapshot, self-metrics, the exposition.

Reads the config, the API's words (reasons, the job record) and the polling's snapshot; nothing
below it imports it.
"""
