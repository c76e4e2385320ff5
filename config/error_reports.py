"""Error reports (DEBUG's page, emailed reports) without the shop's secrets."""

import re

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from .access_log import mask


class SecretsFilter(SafeExceptionReporterFilter):
    """Django hides settings and request META whose names hold API, TOKEN, KEY, SECRET, PASS…;
    the shop also keeps secrets inside URLs: a Discord webhook URL carries its token, and a
    database, cache or mail URL (or a cache's LOCATION) its password."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern
        + "|WEBHOOK_URL|DATABASE_URL|CACHE_URL|EMAIL_URL|LOCATION",
        flags=re.IGNORECASE,
    )

    def get_traceback_frame_variables(self, request, tb_frame) -> list:
        """Each frame's variables, those named like a secret hidden as settings are, inside dicts
        too: the request handler holds a sign-in link's token as callback_kwargs["token"]."""
        variables = super().get_traceback_frame_variables(request, tb_frame)
        if not self.is_active(request):
            return variables
        return [(name, self._hidden(name, value)) for name, value in variables]

    def _hidden(self, name: object, value: object, depth: int = 0) -> object:
        if isinstance(name, str) and self.hidden_settings.search(name):
            return self.cleansed_substitute
        if (
            isinstance(value, dict) and depth < 3
        ):  # bounded: a frame's dicts may refer to themselves
            return {key: self._hidden(key, item, depth + 1) for key, item in value.items()}
        return value


class MaskingReporter(ExceptionReporter):
    """A report whose text never holds a sign-in link's token: the URL, the request and the
    frames' variables all show /account/login/[hidden]/ (as the logs do)."""

    def get_traceback_html(self) -> str:
        return mask(super().get_traceback_html())

    def get_traceback_text(self) -> str:
        return mask(super().get_traceback_text())
