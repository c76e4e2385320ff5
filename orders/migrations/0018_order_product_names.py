"""Each order's product names as bought, searched with its other words: on PostgreSQL in a
trigram index beside 0017's, so a product's name is found in the same index scan, not by a
join that reads a third of the orders' items."""

from django.db import migrations, models


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


def add_trigram_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'CREATE INDEX "order_products_trgm" ON "orders_order" '
            'USING gin (UPPER("product_names") gin_trgm_ops)'
        )


def remove_trigram_index(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "order_products_trgm"')


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0017_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="product_names",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.RunPython(name_the_products, migrations.RunPython.noop),
        migrations.RunPython(add_trigram_index, remove_trigram_index),
    ]
