"""GetRunningJobs on the wire: the constants both the client and the simulator speak.

The reference is ``GetRunningJobs.md`` and ``wire-format.md`` of the API documentation; these
values exist here once, and the simulator imports them.
"""

from __future__ import annotations

import hashlib

PATH = "/api/v1/jobs/runningJobs"
ACTION = "GetRunningJobs"
API_VERSION = "2022-01-04"
# The most jobs one page holds (the API's pageSize maximum).
PAGE_SIZE = 20
# A bodiless request signs the SHA-256 of nothing.
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
# x-acs-date's format: ISO 8601, UTC, whole seconds.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
