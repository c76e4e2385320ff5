import json

from django.core.management.base import BaseCommand

from orders.gateways import is_offline


class Command(BaseCommand):
    help = 'Print {"test_mode": true|false} as the settings decide (dev.py reads it).'
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        self.stdout.write(json.dumps({"test_mode": is_offline()}))
