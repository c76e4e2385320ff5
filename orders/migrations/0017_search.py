"""Staff search (/mgmt/orders): the buyer's name, an index for amounts and the "Largest total"
sort, and on PostgreSQL trigram indexes so that `icontains` (UPPER(column) LIKE UPPER('%…%'))
on the email, name and payment method uses an index instead of reading every order. SQLite
has no pg_trgm: there the search stays a plain LIKE."""

import django.db.models.functions.comparison
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

# The columns /mgmt's search reads with icontains (dashboards.mgmt.search), and their indexes:
# on UPPER(column), the expression Django's icontains compares on PostgreSQL.
TRIGRAM_INDEXES = {"email": "order_email_trgm", "customer_name": "order_name_trgm",
                   "payment_method": "order_method_trgm"}  # fmt: skip


def add_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for column, name in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX "{name}" ON "orders_order" USING gin (UPPER("{column}") gin_trgm_ops)'
        )


def remove_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES.values():
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0016_stripe_invoice_links"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="customer_name",
            field=models.CharField(blank=True, max_length=200),
        ),
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
        TrigramExtension(),
        migrations.RunPython(add_trigram_indexes, remove_trigram_indexes),
    ]
