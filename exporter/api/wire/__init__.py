"""The API's shapes on the wire: constants, the job record, pages, quota answers, status labels.

Pure parsing and constants; imports nothing of the exporter but ``exporter.api.errors``.
"""
