import json

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.gateways import is_offline


class Command(BaseCommand):
    help = (
        'Print {"test_mode": …, "staff_2fa_required": …} as the settings decide (dev.py reads '
        "it for its banner)."
    )
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        answer = {"test_mode": is_offline(), "staff_2fa_required": settings.STAFF_2FA_REQUIRED}
        self.stdout.write(json.dumps(answer))
