"""Orders keep the canonical form of the buyer's email (accounts.addresses), the form /account
matches exactly. An address with no canonical form stays as it is: it matches no account."""

from django.db import migrations

from accounts.addresses import InvalidAddress, canonical_email


def canonicalise(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    addresses = Order.objects.values_list("email", flat=True).distinct().order_by()
    for email in list(addresses.iterator()):
        try:
            canonical = canonical_email(email)
        except InvalidAddress:
            continue
        if canonical != email:
            Order.objects.filter(email=email).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [("orders", "0007_order_status_index")]

    operations = [migrations.RunPython(canonicalise, migrations.RunPython.noop)]
