"""Log output as logfmt or JSON lines, with the ``extra`` fields of each record.

Fields can come from the network (``errorMsg``, ``requestId``, a client's request line), so
every text is cut to ``MAX_FIELD_CHARACTERS`` and its control characters, line separators and
lone surrogates written as escapes: one record is one line, whatever the API or a client sent.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

MAX_FIELD_CHARACTERS = 1024
# C0 and C1 controls, DEL, U+2028/U+2029 (line breaks to some readers), lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """``value`` as text of at most ``MAX_FIELD_CHARACTERS`` (plus a note), escaped to one line."""
    text = str(value)
    if len(text) > MAX_FIELD_CHARACTERS:
        text = f"{text[:MAX_FIELD_CHARACTERS]}...[{len(text) - MAX_FIELD_CHARACTERS} more]"
    return _UNSAFE.sub(_escape, text)


def _safe(value: object) -> object:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return safe_text(value)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": safe_text(record.getMessage()),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[safe_text(key)] = _safe(value)
    if record.exc_info and record.exc_info[1] is not None:
        fields["error"] = safe_text(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
    return fields


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    """Writes a log record as one logfmt line."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """Writes a log record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def setup_logging(level: str, fmt: str) -> None:
    """Send all logs to stderr in ``fmt`` (logfmt or json) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # APScheduler's per-run chatter is noise at info level.
    logging.getLogger("apscheduler").setLevel(max(LEVELS[level], logging.WARNING))
    logging.getLogger("httpx").setLevel(max(LEVELS[level], logging.WARNING))
