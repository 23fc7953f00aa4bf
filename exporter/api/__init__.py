"""API access in three steps: ``wire`` (what is sent and received, pure), ``auth`` (signing and
credentials), ``transport`` (the signed client over HTTP, its rate and retries, and the quota
operations on it). ``errors`` and ``connect_errors`` are shared by all three.

Reads only ``exporter.config``; knows nothing of polling, metrics or the web side.
"""
