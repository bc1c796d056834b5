"""Log output for `hacc run`: plain text, journald, or JSON lines.

- journald (stderr is the journal's stream, JOURNAL_STREAM names it): no timestamps of our own (the
  journal has them) and a `<N>` syslog priority prefix per line (sd-daemon(3)), so `journalctl -p err`
  finds hacc's errors;
- text (anything else, by default): `TIME LEVEL message`, as before;
- json (`--log-format json`, for log shippers): one object per line with time, level, logger, message.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

FORMATS = ("auto", "text", "journal", "json")
# sd-daemon(3) / syslog(3) priorities
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def journal_priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{journal_priority(record.levelno)}>"
        # every line of a multi-line record (a traceback) keeps the record's priority
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, sort_keys=True)


def under_journald(stream: TextIO, env: Mapping[str, str]) -> bool:
    """True when `stream` is the journal stream systemd connected (JOURNAL_STREAM is `DEV:INODE`)."""
    value = env.get("JOURNAL_STREAM", "")
    if ":" not in value:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return value == f"{st.st_dev}:{st.st_ino}"


def formatter(fmt: str, stream: TextIO, env: Mapping[str, str]) -> logging.Formatter:
    if fmt == "auto":
        fmt = "journal" if under_journald(stream, env) else "text"
    if fmt == "journal":
        return JournalFormatter("%(message)s")
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(message)s")


def configure(
    level: str, fmt: str = "auto", stream: TextIO | None = None, env: Mapping[str, str] | None = None
) -> None:
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(fmt, out, os.environ if env is None else env))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
