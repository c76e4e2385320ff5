"""Error reports (DEBUG's page, emailed reports) without the shop's secrets."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsFilter(SafeExceptionReporterFilter):
    """Django hides settings and request META whose names hold API, TOKEN, KEY, SECRET, PASS…;
    the shop also keeps secrets inside URLs: a Discord webhook URL carries its token, and a
    database, cache or mail URL (or a cache's LOCATION) its password."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern
        + "|WEBHOOK_URL|DATABASE_URL|CACHE_URL|EMAIL_URL|LOCATION",
        flags=re.IGNORECASE,
    )
