"""Staff search (/mgmt/orders): the buyer's name, each order's product names as bought
(backfilled for older orders), an index for amounts and the "Largest total" sort, and on
PostgreSQL trigram indexes so that `icontains` (UPPER(column) LIKE UPPER('%…%')) on the email,
name, products and payment method uses an index instead of reading every order. SQLite has no
pg_trgm: there the search stays a plain LIKE."""

import django.db.models.functions.comparison
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

# The columns /mgmt's search reads with icontains (dashboards.mgmt.search), and their indexes:
# on UPPER(column), the expression Django's icontains compares on PostgreSQL.
TRIGRAM_INDEXES = {"email": "order_email_trgm", "customer_name": "order_name_trgm",
                   "payment_method": "order_method_trgm",
                   "product_names": "order_products_trgm"}  # fmt: skip


class KeptTrigramExtension(TrigramExtension):
    """Made on PostgreSQL only (as Django's is) and kept when the migration is undone: another
    schema may use pg_trgm, and Django's would query pg_extension on any database."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        pass


def add_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column, name in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX "{name}" ON "orders_order" USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def name_the_products(apps, schema_editor) -> None:
    """Orders placed before: their items' product names, in the items' order."""
    Order = apps.get_model("orders", "Order")
    OrderItem = apps.get_model("orders", "OrderItem")
    names: dict[int, list[str]] = {}
    items = OrderItem.objects.order_by("order_id", "id").values_list("order_id", "product__name")
    for order_id, name in items.iterator(chunk_size=5000):
        names.setdefault(order_id, []).append(name)
    for order_id, found in names.items():
        Order.objects.filter(pk=order_id).update(product_names=", ".join(found)[:500])


def remove_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES.values():
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0017_radar_checkout_totals"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="customer_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="order",
            name="product_names",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.RunPython(name_the_products, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    models.F("amount_total_cents"), models.F("subtotal_cents")
                ),
                models.F("id"),
                name="order_total",
            ),
        ),
        # CreateExtension does nothing on other databases; the indexes are not in the models'
        # state (SQLite cannot build them), so they are added here only on PostgreSQL.
        KeptTrigramExtension(),
        migrations.RunPython(add_trigram_indexes, remove_trigram_indexes),
    ]
