"""Why a poll failed: the fixed set of reasons, and the error that carries one."""

from __future__ import annotations

# The poll-failure reasons: a fixed set, used as the `reason` label.
REASONS = (
    "throttled",
    "timeout",
    "connection",
    "server_error",
    "client_error",
    "auth",
    "invalid_response",
    "inconsistent",
    "too_many_jobs",
    "too_many_groups",
    "deadline",
    "credentials",
    "internal",
)


# What an error keeps of text from outside: a hostile API once made /ready 4 MB with one
# errorCode. Cut here, where every error is made, before anything stores or logs it.
MAX_MESSAGE_CHARS = 1000
MAX_FIELD_CHARS = 128


def cut(text: str | None, limit: int) -> str | None:
    """``text`` if it fits in ``limit`` characters, else its start and how much was cut."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more]"


class ApiError(Exception):
    """A request or poll that failed; ``str()`` is safe to log (it never holds a secret)."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(cut(message, MAX_MESSAGE_CHARS))
        self.reason = reason
        self.status = status
        self.error_code = cut(error_code, MAX_FIELD_CHARS)
        self.request_id = cut(request_id, MAX_FIELD_CHARS)
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.args[0]]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.error_code:
            parts.append(f"errorCode={self.error_code}")
        if self.request_id:
            parts.append(f"requestId={self.request_id}")
        return " ".join(parts)
