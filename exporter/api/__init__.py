"""API access: the wire format, signing, the job record, errors, transport, rate, credentials;
the quota operations (ListQuotas, GetQuotaUsage) through the same signed client.

Reads only ``exporter.config``; knows nothing of polling, metrics or the web side.
"""
