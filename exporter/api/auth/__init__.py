"""Who a request is from: ACS3 signing and the credential sources it signs with.

Reads the wire constants and the config; knows nothing of transport, polling or metrics.
"""
