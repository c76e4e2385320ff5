"""STRIPE_INVOICES (issue 22): Checkout Sessions ask Stripe for an invoice; the paying session names
it, its `invoice.finalized` / `invoice.paid` events carry its hosted page and PDF, and the receipt
links those instead of drawing our own, whatever order the events come in."""

import itertools

import pytest

from orders.models import Order, StripeEvent
from testkit.signing import signed_post
from testkit.stripe_objects import example, make_event
from tests.factories import make_product

pytestmark = pytest.mark.django_db


def buy(client, email: str = "ada@example.com") -> Order:
    client.post(f"/checkout/{make_product(name='Nebula Pro').slug}/", {"email": email})
    return Order.objects.get(email=email)


def deliver(client, events) -> None:
    for event in events:
        response = signed_post(client, event)
        assert response.status_code == 200, response.content


def invoice_links(page: str) -> bool:
    return "see the invoice" in page


def test_without_the_setting_a_session_asks_for_no_invoice(client, fake_stripe):
    order = buy(client)
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert not any(name.startswith("invoice_creation") for name in sent.form)
    fake_stripe.pay(order.stripe_session_id)
    deliver(client, fake_stripe.events)
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert not invoice_links(page) and "Subtotal" in page


def test_with_the_setting_the_session_asks_for_an_invoice_naming_the_order(
    client, fake_stripe, settings
):
    settings.STRIPE_INVOICES = True
    order = buy(client)
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert sent.form["invoice_creation[enabled]"] == "true"
    assert sent.form["invoice_creation[invoice_data][metadata][order_id]"] == str(order.public_id)


@pytest.mark.parametrize("arrival", ["in order", "invoice first", "duplicated"])
def test_the_receipt_links_stripes_invoice_whatever_order_its_events_come_in(
    client, fake_stripe, settings, arrival
):
    settings.STRIPE_INVOICES = True
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    events = list(fake_stripe.events)
    types = [event["type"] for event in events]
    assert types[-3:] == ["checkout.session.completed", "invoice.finalized", "invoice.paid"]
    if arrival == "invoice first":
        events.reverse()
    if arrival == "duplicated":
        events = list(itertools.chain(events, events[::-1]))
    deliver(client, events)

    order.refresh_from_db()
    invoice = fake_stripe.invoices[order.stripe_invoice_id]
    assert order.status == "completed"
    assert (order.invoice_url, order.invoice_pdf_url) == (
        invoice["hosted_invoice_url"],
        invoice["invoice_pdf"],
    )
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert f'href="{invoice["hosted_invoice_url"]}"' in page
    assert f'href="{invoice["invoice_pdf"]}"' in page
    assert "Subtotal" not in page  # Stripe's invoice instead of ours


def invoice_event(order: Order, invoice_id: str, **fields) -> dict:
    invoice = example(
        "invoice",
        {
            "id": invoice_id,
            "status": "paid",
            "metadata": {"order_id": str(order.public_id), "attempt": "1"},
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf",
        },
        fields,
    )
    return make_event("invoice.paid", invoice)


def test_an_invoice_that_is_not_the_paying_sessions_is_never_linked(client, fake_stripe, settings):
    settings.STRIPE_INVOICES = True
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    deliver(client, [e for e in fake_stripe.events if not e["type"].startswith("invoice.")])
    deliver(client, [invoice_event(order, "in_someone_elses")])
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert not invoice_links(page) and "in_someone_elses" not in page


def test_a_link_that_is_not_stripes_https_is_never_drawn(client, fake_stripe, settings):
    settings.STRIPE_INVOICES = True
    order = buy(client)
    fake_stripe.pay(order.stripe_session_id)
    deliver(client, [e for e in fake_stripe.events if not e["type"].startswith("invoice.")])
    order.refresh_from_db()
    event = invoice_event(order, order.stripe_invoice_id, hosted_invoice_url="javascript:alert(1)")
    deliver(client, [event])
    page = client.get(f"/orders/{order.public_id}/").content.decode()
    assert "javascript:" not in page and not invoice_links(page)


def test_a_malformed_invoice_is_refused_with_nothing_stored(client, fake_stripe):
    order = buy(client)
    event = invoice_event(order, "in_1", hosted_invoice_url=["not", "a", "string"])
    response = signed_post(client, event)
    assert response.status_code == 400
    assert not StripeEvent.objects.filter(id=event["id"]).exists()
