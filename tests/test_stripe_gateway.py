"""StripeGateway through the real `stripe` SDK against the fake Stripe server (testkit/fake_stripe.py)."""

import logging
import threading
import time

import pytest
import time_machine
from django.conf import settings
from django.db import connection, transaction

from audit.commands import Refused
from orders import commands as order_commands
from orders.gateways import GatewayError, LineItem
from orders.gateways.stripe import StripeGateway
from orders.models import Order, Refund
from orders.webhooks import handle_stripe_event
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db

SUCCESS_URL = "http://shop.test/checkout/success/?session_id={CHECKOUT_SESSION_ID}"


def buy(client, product, *, quantity=1, email="ada@example.com"):
    response = client.post(f"/checkout/{product.slug}/", {"email": email, "quantity": quantity})
    return response, Order.objects.get(email=email.lower())


def create_session(gateway, **fields):
    arguments = {
        "order_id": "0b5e4f4e-0000-4000-8000-000000000001",
        "attempt": 1,
        "email": "ada@example.com",
        "currency": "usd",
        "items": [LineItem(name="Editor Pro", unit_amount=4900, quantity=1)],
        "success_url": SUCCESS_URL,
        "cancel_url": "http://shop.test/checkout/cancel/x/",
        "expires_at": int(time.time()) + 3600,
    }
    return gateway.create_session(**{**arguments, **fields})


def paid_order(
    client, fake_stripe, *, price_cents=2500, currency="usd", quantity=1, email="ada@example.com"
):
    product = make_product(price_cents=price_cents, currency=currency)
    _, order = buy(client, product, quantity=quantity, email=email)
    fake_stripe.pay(order.stripe_session_id)
    client.get(f"/checkout/success/?session_id={order.stripe_session_id}")
    order.refresh_from_db()
    assert order.status == "completed"
    return order


@pytest.fixture
def staff():
    return staff_member("boss@example.com", role="Finance")


# Checkout Sessions.


def test_buy_now_creates_a_session_and_sends_the_buyer_to_its_url(client, fake_stripe):
    response, order = buy(client, make_product(price_cents=4900))
    session = fake_stripe.sessions[order.stripe_session_id]
    assert response.status_code == 303
    assert response["Location"] == session["url"]
    assert session["amount_total"] == 4900
    assert order.status == "pending"


def test_the_session_request_carries_the_items_the_order_and_the_return_urls(client, fake_stripe):
    product = make_product(name="Editor Pro", price_cents=4900, currency="eur")
    with time_machine.travel(1_800_000_000, tick=False):
        _, order = buy(client, product, quantity=3, email="Ada@Example.com")
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    public_id = str(order.public_id)
    assert sent.form == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "4900",
        "line_items[0][price_data][product_data][name]": "Editor Pro",
        "line_items[0][quantity]": "3",
        "client_reference_id": public_id,
        "customer_email": "ada@example.com",
        "metadata[order_id]": public_id,
        "metadata[attempt]": "1",
        "payment_intent_data[metadata][order_id]": public_id,
        "payment_intent_data[metadata][attempt]": "1",
        "success_url": settings.SITE_URL + "/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": f"{settings.SITE_URL}/checkout/cancel/{public_id}/",
        "expires_at": str(1_800_000_000 + 60 * 60),  # CHECKOUT_EXPIRES_MINUTES, 60 by default
    }


def test_every_request_pins_the_api_version_and_sends_the_key_only_as_a_bearer_token(
    client, fake_stripe
):
    _, order = buy(client, make_product())
    client.get(f"/checkout/success/?session_id={order.stripe_session_id}")
    assert len(fake_stripe.requests) == 2
    for sent in fake_stripe.requests:
        assert sent.headers["Stripe-Version"] == settings.STRIPE_API_VERSION
        assert sent.headers["Authorization"] == "Bearer sk_test_fake"
        assert "sk_test_fake" not in str(sent.form)


def test_session_creation_is_idempotent_per_order_attempt(client, fake_stripe):
    _, order = buy(client, make_product())
    [sent] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert sent.headers["Idempotency-Key"] == f"checkout-{order.public_id}-1"

    # The same request twice: its expiry pinned, or a second boundary between the two calls
    # makes them differ and Stripe (the fake as well) refuses the key's reuse.
    expires = int(time.time()) + 3600
    again = create_session(StripeGateway(), order_id="o-1", expires_at=expires)
    same = create_session(StripeGateway(), order_id="o-1", expires_at=expires)
    assert same["id"] == again["id"]
    assert len(fake_stripe.sessions) == 2


def test_a_retried_order_expires_its_old_session_and_opens_one_under_a_new_key(
    client, fake_stripe, staff
):
    _, order = buy(client, make_product())
    first = order.stripe_session_id
    handle_stripe_event(fake_stripe.decline(first))
    order.refresh_from_db()
    assert order.status == "failed"

    url = order_commands.retry.run(order, by=staff)

    order.refresh_from_db()
    assert order.attempt == 2
    assert order.status == "pending"
    assert url == fake_stripe.sessions[order.stripe_session_id]["url"]
    assert fake_stripe.sessions[first]["status"] == "expired"
    assert fake_stripe.requests_to("POST", f"/v1/checkout/sessions/{first}/expire")
    created = fake_stripe.requests_to("POST", "/v1/checkout/sessions")[-1]
    assert created.headers["Idempotency-Key"] == f"checkout-{order.public_id}-2"
    assert created.form["metadata[attempt]"] == "2"


def test_retrieving_a_session_expands_its_payment_intent_and_latest_charge(fake_stripe):
    gateway = StripeGateway()
    session = create_session(gateway)
    fake_stripe.pay(session["id"], last4="1881")

    found = gateway.retrieve_session(session["id"])

    sent = fake_stripe.requests[-1]
    assert (sent.method, sent.path) == ("GET", f"/v1/checkout/sessions/{session['id']}")
    assert sent.form == {"expand[0]": "payment_intent.latest_charge"}
    assert found["payment_status"] == "paid"
    assert found["payment_intent"]["latest_charge"]["payment_method_details"]["card"] == {
        "brand": "visa",
        "last4": "1881",
    }


def test_expiring_an_open_session_closes_it_and_expiring_it_again_is_refused(fake_stripe):
    gateway = StripeGateway()
    session = create_session(gateway)

    gateway.expire_session(session["id"])

    assert fake_stripe.sessions[session["id"]]["status"] == "expired"
    with pytest.raises(GatewayError) as refused:
        gateway.expire_session(session["id"])
    assert refused.value.code == "stripe_refused"


def test_an_unknown_session_is_reported_as_missing(fake_stripe):
    with pytest.raises(GatewayError) as missing:
        StripeGateway().retrieve_session("cs_test_nobody")
    assert missing.value.code == "resource_missing"


# Refunds.


def test_a_staff_refund_sends_a_key_made_of_the_order_and_the_refund_sequence(
    client, fake_stripe, staff
):
    order = paid_order(client, fake_stripe)

    refund = order_commands.refund.run(order, by=staff, amount_cents=1000, reason="asked nicely")

    [sent] = fake_stripe.requests_to("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == f"refund-{order.public_id}-1"
    assert sent.form == {
        "payment_intent": order.stripe_payment_intent_id,
        "amount": "1000",
        "reason": "requested_by_customer",
        "metadata[order_id]": str(order.public_id),
        "metadata[reason]": "asked nicely",
    }
    assert (refund.sequence, refund.amount_cents, refund.status) == (1, 1000, "succeeded")
    assert refund.stripe_refund_id in fake_stripe.refunds


def test_a_refund_retried_after_a_timeout_reuses_its_key_and_refunds_once(
    client, fake_stripe, staff, settings
):
    order = paid_order(client, fake_stripe)
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.fail_next("timeout", times=2)  # the SDK's own retry times out as well

    with pytest.raises(Refused) as lost:
        order_commands.refund.run(order, by=staff, amount_cents=1000)
    assert lost.value.code == "stripe_unreachable"
    assert not Refund.objects.exists()

    refund = order_commands.refund.run(order, by=staff, amount_cents=1000)

    sent = fake_stripe.requests_to("POST", "/v1/refunds")
    assert len(sent) == 3
    assert {r.headers["Idempotency-Key"] for r in sent} == {f"refund-{order.public_id}-1"}
    assert list(fake_stripe.refunds) == [refund.stripe_refund_id]
    assert Refund.objects.get().sequence == 1


def test_a_refund_whose_key_stripe_is_still_working_on_is_retried_under_that_key(
    client, fake_stripe, staff
):
    """Stripe answers 409 idempotency_key_in_use while an earlier request with the key is in
    flight (another worker, a double submit): the outcome is unknown, not a refusal, so the
    next try keeps the key and cannot refund twice."""
    order = paid_order(client, fake_stripe)
    fake_stripe.fail_next("in_use", times=2)  # the SDK retries a 409 once itself

    with pytest.raises(Refused) as busy:
        order_commands.refund.run(order, by=staff, amount_cents=1000)
    assert busy.value.code == "stripe_busy"
    assert "Nothing was charged" not in busy.value.words
    order.refresh_from_db()
    assert order.refund_refusals == 0

    order_commands.refund.run(order, by=staff, amount_cents=1000)
    sent = fake_stripe.requests_to("POST", "/v1/refunds")
    assert {r.headers["Idempotency-Key"] for r in sent} == {f"refund-{order.public_id}-1"}
    assert len(fake_stripe.refunds) == 1


def test_a_refund_retried_with_another_amount_under_the_same_key_is_refused(
    client, fake_stripe, staff, settings
):
    order = paid_order(client, fake_stripe)
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.fail_next("timeout", times=2)
    with pytest.raises(Refused):
        order_commands.refund.run(order, by=staff, amount_cents=1000)

    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff, amount_cents=1500)

    assert refused.value.code == "stripe_refused"
    assert [r["amount"] for r in fake_stripe.refunds.values()] == [1000]
    assert not Refund.objects.exists()


def test_a_second_refund_of_the_same_order_uses_a_new_key(client, fake_stripe, staff):
    order = paid_order(client, fake_stripe, price_cents=2500)

    order_commands.refund.run(order, by=staff, amount_cents=1000)
    order_commands.refund.run(order, by=staff)

    keys = [r.headers["Idempotency-Key"] for r in fake_stripe.requests_to("POST", "/v1/refunds")]
    assert keys == [f"refund-{order.public_id}-1", f"refund-{order.public_id}-2"]
    assert [r.amount_cents for r in order.refunds.order_by("sequence")] == [1000, 1500]
    assert len(fake_stripe.refunds) == 2
    order.refresh_from_db()
    assert order.status == "refunded"


# Events.


def test_listing_events_pages_through_stripe_with_the_filters_given(fake_stripe):
    for n in range(150):
        fake_stripe.emit("charge.succeeded", {"id": f"ch_{n}", "object": "charge"}, created=1000)
    fake_stripe.emit("charge.succeeded", {"id": "ch_old", "object": "charge"}, created=999)
    fake_stripe.emit("charge.succeeded", {"id": "ch_seen", "object": "charge"}, created=1000)
    fake_stripe.mark_delivered(fake_stripe.events[-1]["id"])

    events = list(StripeGateway().list_events(created_gte=1000, delivery_success=False))

    assert len(events) == 150
    assert events[0]["data"]["object"]["id"] == "ch_149"  # newest first
    first, second = fake_stripe.requests_to("GET", "/v1/events")
    assert first.form == {"created[gte]": "1000", "limit": "100", "delivery_success": "false"}
    assert second.form == {**first.form, "starting_after": events[99]["id"]}


def test_listing_events_without_a_delivery_filter_lists_delivered_ones_too(fake_stripe):
    fake_stripe.emit("charge.succeeded", {"id": "ch_1", "object": "charge"}, created=1000)
    fake_stripe.mark_delivered(fake_stripe.events[-1]["id"])

    events = list(StripeGateway().list_events(created_gte=1000))

    assert [e["data"]["object"]["id"] for e in events] == ["ch_1"]
    assert "delivery_success" not in fake_stripe.requests[-1].form


# What the customer sees when Stripe fails.


def assert_clear_error_page(response, order, caplog):
    body = response.content.decode()
    assert response.status_code == 502
    assert "We could not start the payment" in body
    assert order.number in body
    for leak in ("sk_test_fake", "Traceback", "stripe.", "Request req_"):
        assert leak not in body
    assert "stripe error" in caplog.text  # the details went to the log, the key did not
    assert "sk_test_fake" not in caplog.text


def test_a_card_error_shows_a_clear_page_and_fails_the_order(client, fake_stripe, caplog):
    caplog.set_level(logging.DEBUG)
    fake_stripe.fail_next("card_error", decline_code="insufficient_funds")

    response, order = buy(client, make_product())

    assert_clear_error_page(response, order, caplog)
    assert "Your card has insufficient funds." in response.content.decode()
    assert len(fake_stripe.requests) == 1  # a decline is not retried
    order.refresh_from_db()
    assert order.status == "failed"
    assert order.failure_code == "card_error"
    assert order.failure_message == "Your card has insufficient funds."
    assert order.transitions.last().source == "checkout"


def test_a_stripe_outage_shows_a_clear_page_after_one_retry_and_fails_the_order(
    client, fake_stripe, caplog
):
    caplog.set_level(logging.DEBUG)
    fake_stripe.fail_next("api_error", times=2)

    response, order = buy(client, make_product())

    assert_clear_error_page(response, order, caplog)
    assert "The payment provider is having trouble" in response.content.decode()
    sent = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert [r.headers["Idempotency-Key"] for r in sent] == [f"checkout-{order.public_id}-1"] * 2
    order.refresh_from_db()
    assert order.status == "failed"
    assert order.failure_code == "stripe_unavailable"
    assert order.stripe_session_id == ""


def test_a_stripe_timeout_shows_a_clear_page_after_one_retry_and_fails_the_order(
    client, fake_stripe, caplog, settings
):
    caplog.set_level(logging.DEBUG)
    settings.STRIPE_TIMEOUT = 0.3
    fake_stripe.fail_next("timeout", times=2)

    response, order = buy(client, make_product())

    assert_clear_error_page(response, order, caplog)
    assert "could not reach the payment provider" in response.content.decode()
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 2
    order.refresh_from_db()
    assert order.status == "failed"
    assert order.failure_code == "stripe_unreachable"
    assert "Nothing was charged" in order.failure_message


def test_a_single_stripe_500_is_retried_with_the_same_key_and_checkout_goes_on(client, fake_stripe):
    fake_stripe.fail_next("api_error")

    response, order = buy(client, make_product())

    assert response.status_code == 303
    assert response["Location"] == fake_stripe.sessions[order.stripe_session_id]["url"]
    sent = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert [r.headers["Idempotency-Key"] for r in sent] == [f"checkout-{order.public_id}-1"] * 2
    order.refresh_from_db()
    assert order.status == "pending"


# The success page.


def test_the_success_page_is_throttled_per_client_before_it_calls_stripe(
    client, fake_stripe, settings
):
    """Each visit asks Stripe for the session: a client that reloads it in a loop (or makes up
    session ids) would spend the shop's Stripe rate limit. Past the limit it gets a 429 in words,
    and Stripe hears nothing more from it; another client still gets through."""
    settings.CHECKOUT_SUCCESS_RATE = 2
    _, order = buy(client, make_product(price_cents=4900))
    url = f"/checkout/success/?session_id={order.stripe_session_id}"
    path = f"/v1/checkout/sessions/{order.stripe_session_id}"
    for _ in range(2):
        assert client.get(url, REMOTE_ADDR="10.0.0.1").status_code == 303
    asked = len(fake_stripe.requests_to("GET", path))
    assert asked >= 2

    refused = client.get(url, REMOTE_ADDR="10.0.0.1")

    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.CHECKOUT_SUCCESS_WINDOW
    assert "Too many visits to this page from your network" in refused.content.decode()
    assert len(fake_stripe.requests_to("GET", path)) == asked
    assert client.get(url, REMOTE_ADDR="10.0.0.2").status_code == 303


def test_the_success_page_fulfils_a_paid_session_and_redirects_to_the_order(client, fake_stripe):
    _, order = buy(client, make_product(price_cents=4900))
    session = fake_stripe.pay(order.stripe_session_id)

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == 303
    assert response["Location"] == f"/orders/{order.public_id}/"
    order.refresh_from_db()
    intent = fake_stripe.intents[session["payment_intent"]]
    assert order.status == "completed"
    assert order.paid_source == "success page"
    assert order.stripe_payment_intent_id == intent["id"]
    assert order.stripe_charge_id == intent["latest_charge"]
    assert order.amount_total_cents == 4900
    assert order.payment_method == "Visa •••• 4242"


def test_the_success_page_fulfils_once_however_often_it_is_loaded(client, fake_stripe):
    _, order = buy(client, make_product())
    fake_stripe.pay(order.stripe_session_id)

    for _ in range(3):
        response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")
        assert response.status_code == 303

    assert [t.to_status for t in order.transitions.all()] == ["pending", "completed"]


def test_the_success_page_for_an_unpaid_session_leaves_the_order_pending(client, fake_stripe):
    _, order = buy(client, make_product())

    response = client.get(f"/checkout/success/?session_id={order.stripe_session_id}")

    assert response.status_code == 303
    order.refresh_from_db()
    assert order.status == "pending"


def test_an_unknown_session_id_on_the_success_page_is_404(client, fake_stripe):
    response = client.get("/checkout/success/?session_id=cs_test_nobody")

    assert response.status_code == 404
    assert fake_stripe.requests[-1].path == "/v1/checkout/sessions/cs_test_nobody"


def test_a_session_of_no_order_of_ours_is_404_on_the_success_page(client, fake_stripe):
    session = create_session(StripeGateway(), order_id="not-a-uuid")
    fake_stripe.pay(session["id"])

    response = client.get(f"/checkout/success/?session_id={session['id']}")

    assert response.status_code == 404


def test_the_success_page_shows_a_clear_page_when_stripe_is_down(client, fake_stripe, caplog):
    caplog.set_level(logging.DEBUG)
    order = make_order()
    fake_stripe.fail_next("api_error", times=2)

    response = client.get(f"/checkout/success/?session_id=cs_test_{order.number}")

    assert response.status_code == 502
    assert "The payment provider is having trouble" in response.content.decode()
    assert "sk_test_fake" not in response.content.decode() + caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_no_lock_on_the_order_is_held_while_stripe_answers_a_refund(
    client, fake_stripe, staff, settings
):
    order = paid_order(client, fake_stripe)
    settings.STRIPE_TIMEOUT = 2
    fake_stripe.fail_next("timeout", times=2, seconds=1.0)  # a slow answer, then the retry's
    outcome = []

    def refund_in_another_thread():
        try:
            order_commands.refund.run(order, by=staff, amount_cents=1000)
            outcome.append("refunded")
        except Refused as error:
            outcome.append(error.code)
        finally:
            connection.close()

    thread = threading.Thread(target=refund_in_another_thread)
    thread.start()
    deadline = time.monotonic() + 10
    while not fake_stripe.requests_to("POST", "/v1/refunds"):
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.01)
    with transaction.atomic():  # the webhook or another staff member can lock it meanwhile
        Order.objects.select_for_update(nowait=True).get(pk=order.pk)
    thread.join(30)
    assert outcome == ["refunded"]


def test_a_refund_stripe_refused_gets_a_new_key_the_next_time(client, fake_stripe, staff):
    """Stripe keeps a refused request's answer under its Idempotency-Key for 24 hours: reusing
    the key would refuse every retry long after the cause (a Dashboard refund) went away."""
    order = paid_order(client, fake_stripe)
    charge = fake_stripe.charges[order.stripe_charge_id]
    charge["amount_refunded"] = 2000  # a Dashboard refund the shop has not heard of yet

    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff, amount_cents=1000)
    assert refused.value.code == "amount_too_large"
    assert "more than is left" in refused.value.words
    assert "Nothing was charged" not in refused.value.words

    charge["amount_refunded"] = 0  # that refund failed: the money is refundable again
    refund = order_commands.refund.run(order, by=staff, amount_cents=1000)

    keys = [r.headers["Idempotency-Key"] for r in fake_stripe.requests_to("POST", "/v1/refunds")]
    assert keys == [f"refund-{order.public_id}-1", f"refund-{order.public_id}-1-1"]
    assert (refund.status, refund.sequence) == ("succeeded", 1)


def test_stripe_refusing_a_refund_for_a_chargeback_says_so(client, fake_stripe, staff):
    order = paid_order(client, fake_stripe)
    fake_stripe.charges[order.stripe_charge_id]["disputed"] = True  # its webhook is on its way

    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff)

    assert refused.value.code == "charge_disputed"
    assert "chargeback" in refused.value.words
    assert not Refund.objects.exists()


def test_a_refund_carries_the_stripe_reason_staff_chose(client, fake_stripe, staff):
    order = paid_order(client, fake_stripe)

    refund = order_commands.refund.run(
        order, by=staff, amount_cents=1000, stripe_reason="fraudulent"
    )

    [sent] = fake_stripe.requests_to("POST", "/v1/refunds")
    assert sent.form["reason"] == "fraudulent"
    assert refund.stripe_reason == "fraudulent"
    with pytest.raises(Refused) as refused:
        order_commands.refund.run(order, by=staff, stripe_reason="because")
    assert "no refund reason" in refused.value.words
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1
