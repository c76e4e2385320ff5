import logging
import sys
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils import timezone
from tqdm import tqdm

from orders.gateways import GatewayError, get_gateway
from orders.models import StripeEvent
from orders.webhooks import handle_stripe_event
from shop.durations import parse_duration

log = logging.getLogger(__name__)


def list_missed_events(*, since: int) -> list[dict[str, Any]]:
    """Events Stripe failed to deliver since `since`, then every event newer than the newest
    one stored (a delivery Stripe counts as done may have gone to another server), oldest first."""
    gateway = get_gateway()
    newest = StripeEvent.objects.aggregate(newest=Max("created"))["newest"] or since
    found: dict[str, dict[str, Any]] = {}
    for event in gateway.list_events(created_gte=since, delivery_success=False):
        found.setdefault(event["id"], event)
    for event in gateway.list_events(created_gte=max(since, newest)):
        found.setdefault(event["id"], event)
    return sorted(found.values(), key=lambda event: (event["created"], event["id"]))


def stored_ids(ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):  # stays under SQLite's limit on query parameters
        chunk = ids[start : start + 500]
        found.update(StripeEvent.objects.filter(id__in=chunk).values_list("id", flat=True))
    return found


class Command(BaseCommand):
    help = "Feed Stripe events that never reached the webhook through the same handler."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", default="3d", help="How far back: 90m, 12h, 3d.")
        parser.add_argument("--dry-run", action="store_true", help="List, replay nothing.")

    def handle(self, *args, since: str, dry_run: bool, **options) -> None:
        start = int((timezone.now() - parse_duration(since)).timestamp())
        try:
            events = list_missed_events(since=start)
        except GatewayError as error:
            raise CommandError(f"Could not list events: {error.message}") from None
        stored = stored_ids([event["id"] for event in events])
        missing = [event for event in events if event["id"] not in stored]
        self.stdout.write(
            f"listed {len(events)} event(s) since {since}: {len(stored)} already stored, "
            f"{len(missing)} to replay"
        )
        if dry_run:
            for event in missing:
                self.stdout.write(f"  would replay {event['id']} {event['type']}")
            return
        outcomes = self._replay(missing)
        self.stdout.write(f"replayed {len(missing) - outcomes['failed']} event(s), by outcome:")
        for outcome, count in sorted(outcomes.items()):
            self.stdout.write(f"  {outcome}: {count}")
        if outcomes["failed"]:
            raise CommandError(f"{outcomes['failed']} event(s) failed; run the command again.")

    def _replay(self, events: list[dict[str, Any]]) -> Counter:
        outcomes: Counter = Counter()
        # The bar writes carriage returns, which Django's OutputWrapper would end with newlines.
        bar_file = getattr(self.stderr, "_out", sys.stderr)
        with tqdm(events, desc="replaying", unit="event", file=bar_file) as bar:
            for event in bar:
                try:
                    outcomes[str(handle_stripe_event(event).outcome)] += 1
                except Exception:
                    # As after a 500 to Stripe: nothing was stored, so the next run tries again.
                    log.exception("replaying stripe event %s %s failed", event["id"], event["type"])
                    outcomes["failed"] += 1
                    bar.write(f"{event['id']} {event['type']} failed", file=bar_file)
        return outcomes
