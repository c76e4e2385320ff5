from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from licenses.pool import import_keys, parse_keys
from orders.models import LicenseKind, Product


class Command(BaseCommand):
    help = (
        "Import a vendor's keys (text: one per line, or CSV: first column) into a product's pool."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("product", help="the product's slug")
        parser.add_argument("file", type=Path)

    def handle(self, *args, product: str, file: Path, **options) -> None:
        item = Product.objects.filter(slug=product).first()
        if item is None:
            raise CommandError(f"No product with slug {product!r}.")
        if item.license_kind != LicenseKind.POOL:
            raise CommandError(f"{item} does not use pool keys (its kind is {item.license_kind}).")
        try:
            keys = parse_keys(file.read_bytes())
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        imported, skipped = import_keys(item, keys)
        self.stdout.write(
            f"Imported {imported} key(s), skipped {skipped} duplicate(s) or blank(s)."
        )
