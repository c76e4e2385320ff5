"""The official SDK the gateway needs: pyproject.toml's floor must have the API it calls.

`StripeClient(..., base_addresses=None)` is accepted from stripe 13, and
`StripeObject.to_dict(for_json=True)` exists from 15.0.1; with an older SDK every Buy Now would
be a 500. Run against stripe 14, the second test fails."""

import re
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
import stripe

from orders.gateways.stripe import _client

FLOOR = (15, 0, 1)


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_pyproject_asks_for_an_sdk_with_the_api_the_gateway_calls():
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    [spec] = [d for d in project["project"]["dependencies"] if d.startswith("stripe")]
    assert version(re.search(r">=\s*([\d.]+)", spec)[1]) >= FLOOR
    assert version(stripe.VERSION) >= FLOOR


@pytest.mark.parametrize("api_base", ["", "http://127.0.0.1:12111"])
def test_the_installed_sdk_builds_the_gateways_client_and_dumps_objects_as_json(settings, api_base):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "sk_test_sdk", api_base
    assert isinstance(_client(), stripe.StripeClient)  # base_addresses=None without a base

    session = stripe.StripeObject.construct_from(
        {
            "id": "cs_1",
            "amount_total": 1999,
            "payment_intent": {"id": "pi_1", "fee": Decimal("1.5")},
        },
        "sk_test_sdk",
    )
    assert session.to_dict(for_json=True) == {
        "id": "cs_1",
        "amount_total": 1999,
        "payment_intent": {"id": "pi_1", "fee": "1.5"},
    }
