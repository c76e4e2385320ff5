from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_staff_second_factor(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if settings.STAFF_2FA_REQUIRED:
        return []
    return [
        checks.Warning(
            "STAFF_2FA_REQUIRED is off: staff sign in to /admin and /mgmt with a password alone.",
            hint="Leave STAFF_2FA_REQUIRED unset (on) outside the offline test mode.",
            id="accounts.W001",
        )
    ]
