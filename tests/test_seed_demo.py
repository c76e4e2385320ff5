"""The demo products `dev.py` adds show every kind of license a vendor sells, terms included."""

from io import StringIO

import pytest
from django.core.management import call_command

from orders.models import Product

pytestmark = pytest.mark.django_db


def test_the_demo_products_have_terms_and_running_it_again_changes_nothing():
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    terms = {
        p.slug: (p.license_kind, p.max_activations, p.license_days)
        for p in Product.objects.order_by("slug")
    }
    assert terms == {
        "pixel-studio-pro": ("generated", 3, 365),
        "starfall-steam-key": ("pool", None, None),
        "support-hour": ("none", None, None),
        "tunewright": ("generated", 2, None),
    }
