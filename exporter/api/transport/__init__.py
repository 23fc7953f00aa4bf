"""Requests over HTTP: the signed client, bounded bodies, the learned rate, retries, and the quota
operations on the same client. Builds on ``wire`` and ``auth``.
"""
