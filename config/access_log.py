"""Log lines never show a sign-in link's token (it holds the email, and opens the account) nor an
email in a URL: gunicorn's access log, runserver's (django.server) and every line the settings'
formatters write (django.request's "Bad Request: /account/login/…/" among them)."""

import logging
import re
from typing import Any

from django.utils.log import ServerFormatter
from gunicorn.glogging import Logger

HIDDEN = "[hidden]"
SIGN_IN_LINK = re.compile(r"(/account/login/)[^/?#\s\"']+", re.IGNORECASE)
EMAIL_PARAMETER = re.compile(r"([?&](?:amp;)?email=)[^&#\s\"']*", re.IGNORECASE)


def mask(text: str) -> str:
    """`text` with every sign-in token and `email=` value replaced by [hidden]."""
    text = SIGN_IN_LINK.sub(rf"\g<1>{HIDDEN}", text)
    return EMAIL_PARAMETER.sub(rf"\g<1>{HIDDEN}", text)


class MaskingFilter(logging.Filter):
    """Masks a record's message and its string arguments (for loggers whose formatters are not
    the settings', such as gunicorn's error log: "Error handling request /account/login/…")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        return True


class GunicornLogger(Logger):
    """gunicorn's logger (config/gunicorn.py's logger_class) with every atom of the access log
    masked (the request line, path, query string, referer, any header or environ value), and
    its error log's request URIs too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not any(isinstance(f, MaskingFilter) for f in self.error_log.filters):
            self.error_log.addFilter(MaskingFilter())

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {name: mask(v) if isinstance(v, str) else v for name, v in atoms.items()}


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class MaskingServerFormatter(ServerFormatter):
    """runserver's access lines (django.server), coloured as Django colours them."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))
