"""Orders keep their products' names as bought (staff search them): new orders from the
checkout, older ones from orders/0018's backfill."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders.checkout import place_order
from orders.models import Order
from tests.factories import make_product


@pytest.mark.django_db
def test_a_placed_order_names_its_product_as_bought():
    product = make_product(name="Pixel Studio Pro")
    order = place_order(product=product, quantity=2, email="ada@example.com")
    product.name = "Pixel Studio 2"
    product.save()
    assert Order.objects.get(pk=order.pk).product_names == "Pixel Studio Pro"


@pytest.mark.django_db(transaction=True)
def test_the_migration_names_the_products_of_orders_placed_before():
    before = [("orders", "0017_radar_checkout_totals")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Product = apps.get_model("orders", "Product")
    order = apps.get_model("orders", "Order").objects.create(
        number="OLD00001", email="ada@example.com", currency="usd", subtotal_cents=3000
    )
    for name in ["Tunewright", "Starfall"]:
        product = Product.objects.create(slug=name.lower(), name=name, price_cents=1500)
        order.items.create(product=product, quantity=1, unit_price_cents=1500)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert Order.objects.get(number="OLD00001").product_names == "Tunewright, Starfall"
