from django.core.management.base import BaseCommand

from orders.models import LicenseKind, Product

# slug, name, description, price, kind, key prefix, devices at a time, days of validity (None:
# unlimited, never expires): one product of each kind a vendor sells, terms included.
DEMO = [
    (
        "pixel-studio-pro",
        "Pixel Studio Pro",
        "A raster editor for pixel art and sprites.",
        4900,
        LicenseKind.GENERATED,
        "PSP",
        3,
        365,
    ),
    (
        "tunewright",
        "Tunewright",
        "A tracker-style music sequencer with a sample library.",
        2900,
        LicenseKind.GENERATED,
        "TW",
        2,
        None,
    ),
    (
        "starfall-steam-key",
        "Starfall (Steam key)",
        "A space roguelike; you receive a Steam key.",
        1999,
        LicenseKind.POOL,
        "",
        None,
        None,
    ),
    (
        "support-hour",
        "One hour of support",
        "A video call with the developers. No key needed.",
        9900,
        LicenseKind.NONE,
        "",
        None,
        None,
    ),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo products. Safe to run again."

    def handle(self, *args, **options) -> None:
        for slug, name, description, price, kind, prefix, devices, days in DEMO:
            Product.objects.update_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "description": description,
                    "price_cents": price,
                    "currency": "usd",
                    "license_kind": kind,
                    "license_prefix": prefix,
                    "max_activations": devices,
                    "license_days": days,
                    "active": True,
                },
            )
        self.stdout.write(f"{len(DEMO)} demo products ready.")
