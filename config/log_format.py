"""LOG_FORMAT=json: one JSON object per line, for a log collector to read without parsing text.

A dozen lines of our own rather than python-json-logger: only the standard fields, the
traceback and the `extra` fields our log calls pass (event_id, outcome, delivery_ids, …) are
needed, and nothing here needs options."""

import json
import logging
from datetime import UTC, datetime

from .access_log import mask

# What every LogRecord has; anything else on a record came from `extra=`.
STANDARD = {*vars(logging.makeLogRecord({})), "message", "asctime"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((name, value) for name, value in vars(record).items() if name not in STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str writes objects such as django.request's `request` with their path in it.
        return mask(json.dumps(entry, default=str, ensure_ascii=False))
