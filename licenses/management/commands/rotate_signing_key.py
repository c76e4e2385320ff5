from django.conf import settings
from django.core.management.base import BaseCommand

from licenses.certificates import REFRESH_SECONDS, rotate_signing_key


class Command(BaseCommand):
    help = (
        "Make a new key sign license certificates. The old public key stays in"
        " /api/licenses/public-key until every certificate it signed has expired; its private"
        " half is erased now."
    )

    def handle(self, *args, **options) -> None:
        key, retired = rotate_signing_key()
        self.stdout.write(f"Signing key {key.kid} is current.")
        if retired is not None:
            hours = (settings.LICENSE_CERTIFICATE_TTL + REFRESH_SECONDS) / 3600
            self.stdout.write(
                f"Retired {retired.kid}: published for {hours:.1f} more hours"
                " (LICENSE_CERTIFICATE_TTL), then dropped from the key set."
            )
