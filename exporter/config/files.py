"""Reading a file the configuration names: a regular file, at most ``MAX_FILE_BYTES``, never a wait.

A FIFO put where the config file was would block the reader until someone writes to it (at a
reload, the whole exporter with it), and a 20 MB file takes PyYAML 17 s and 386 MB
to parse. So the file is opened without blocking, must be a regular file, and is read up to a
cap far above any real configuration.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from exporter.config.values import ConfigError

# A thousand targets fit; PyYAML (pure Python) takes seconds and tens of MB per MiB it parses.
MAX_FILE_BYTES = 256 * 1024


def read_bounded_file(path: str | Path, key: str) -> bytes:
    """The bytes of ``path``; ConfigError naming ``key`` if unreadable, not regular, or too big."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise ConfigError(key, "a readable file", str(path)) from error
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ConfigError(key, "a regular file (not a FIFO, device or directory)", str(path))
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(descriptor, min(65536, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise ConfigError(key, f"a file of at most {MAX_FILE_BYTES // 1024} KiB", str(path))
    except OSError as error:
        raise ConfigError(key, "a readable file", str(path)) from error
    finally:
        os.close(descriptor)
    return b"".join(chunks)
