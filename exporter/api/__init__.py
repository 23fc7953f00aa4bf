"""API access: the wire format, signing, the job record, errors, transport, rate, credentials.

Reads only ``exporter.config``; knows nothing of polling, metrics or the web side.
"""
