import sys
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from notifications.retention import PRUNABLE as NOTIFICATIONS
from orders.retention import PRUNABLE as ORDERS
from shop.durations import parse_duration
from workers.retention import Prunable, prune_in_batches

PRUNABLE = [*ORDERS, *NOTIFICATIONS]


class Command(BaseCommand):
    help = (
        "Delete what is past its age: Stripe event payloads, delivered notifications with their "
        "deliveries and attempts, delivered test-gateway events. Safe while the shop runs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            help=f"An age such as 90d, 12h or 30m (default RETENTION_DAYS: {settings.RETENTION_DAYS}d).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing.")

    def handle(self, *args, older_than: str | None, dry_run: bool, **options) -> None:
        age = parse_duration(older_than) if older_than else timedelta(days=settings.RETENTION_DAYS)
        cutoff = timezone.now() - age
        self.stdout.write(f"pruning what is older than {age} (before {cutoff:%Y-%m-%d %H:%M %Z})")
        for prunable in PRUNABLE:
            if dry_run:
                count = prunable.due(cutoff).count()
                self.stdout.write(f"{prunable.name}: {count} would be {prunable.verb}")
            else:
                self.stdout.write(
                    f"{prunable.name}: {self._prune(prunable, cutoff)} {prunable.verb}"
                )

    def _prune(self, prunable: Prunable, cutoff) -> int:
        # The bar writes carriage returns, which Django's OutputWrapper would end with newlines.
        bar_file = getattr(self.stderr, "_out", sys.stderr)
        total = prunable.due(cutoff).count()
        with tqdm(total=total, desc=prunable.name, unit="row", file=bar_file) as bar:
            return prune_in_batches(prunable, cutoff, done=bar.update)
