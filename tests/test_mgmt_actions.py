"""Staff actions on /mgmt: confirmed first, done by the owning app's function, recorded with the
staff member; refused in words (never a 500) when the order is in the wrong state."""

import pytest
from django.contrib.messages import get_messages

from audit.models import Action
from licenses.models import KeyEmail, PoolKey
from notifications.models import Delivery, Destination
from notifications.outbox import enqueue
from orders import amounts
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from tests.account_support import order_in
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(client):
    user = staff_member()
    client.force_login(user)
    return user


def paid(quantity: int = 1, **product) -> Order:
    order = make_order(quantity=quantity, product=make_product(**product) if product else None)
    start_checkout(order)
    order.refresh_from_db()
    OfflineGateway().pay(order.stripe_session_id)
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def refund(client, order, amount: str, *, seen: int | None = None, reason: str = "asked"):
    """Type the amount, then confirm it as the review step shows it (as staff click twice)."""
    seen = amounts.refunded(order) if seen is None else seen
    data = {"amount": amount, "reason": reason, "seen_returned": seen}
    url = f"/mgmt/orders/{order.number}/refund/"
    review = client.post(url, data)
    if review.status_code != 200 or "review" not in review.context:
        return review
    return client.post(url, {**data, "confirmed": review.context["form"]["confirmed"].value()})


def test_the_refund_page_says_what_will_happen_and_how_much_is_left(client, staff):
    order = paid(quantity=2)
    page = client.get(f"/mgmt/orders/{order.number}/refund/").content.decode()
    assert "What will happen" in page and "at most $50.00" in page
    assert 'name="seen_returned" value="0"' in page
    assert Action.objects.count() == 0  # looking is not doing


def test_half_then_the_rest_refunds_the_order_and_records_who(client, staff):
    order = paid(quantity=2)
    response = refund(client, order, "25")
    assert response.status_code == 303
    assert said(response) == [f"Refunded $25.00 on order {order.number}."]
    order.refresh_from_db()
    assert (order.status, amounts.refunded(order)) == ("completed", 2500)
    refund(client, order, "")  # empty: all that is left
    order.refresh_from_db()
    assert (order.status, amounts.refunded(order)) == ("refunded", 5000)
    assert set(order.licenses.values_list("status", flat=True)) == {"revoked"}
    rows = Action.objects.filter(command="orders.refund").order_by("id")
    assert [(r.user, r.order, r.outcome) for r in rows] == [(staff, order, "done")] * 2
    assert rows[0].detail.startswith("$25.00: asked (re_")  # with Stripe's refund id
    assert order.refunds.first().requested_by == staff


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("50.01", "Only $50.00 is left to refund"),
        ("0", "more than zero"),
        ("-5", "is not an amount"),
        ("abc", "is not an amount"),
        ("1.2345", "go down to $0.01"),
        ("NaN", "is not an amount"),
    ],
)
def test_the_refund_form_refuses_what_cannot_be_refunded(client, staff, amount, error):
    order = paid(quantity=2)
    response = refund(client, order, amount)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert order.refunds.count() == 0
    assert not Action.objects.exists()


def test_a_refund_in_yen_is_typed_in_whole_yen(client, staff):
    order = paid(price_cents=1999, currency="jpy")
    assert "at most ¥1,999" in client.get(f"/mgmt/orders/{order.number}/refund/").content.decode()
    refund(client, order, "1,000")
    order.refresh_from_db()
    assert amounts.refunded(order) == 1000


def test_a_double_click_on_refund_refunds_once(client, staff):
    order = paid(quantity=2)
    first = refund(client, order, "10", seen=0)
    second = refund(client, order, "10", seen=0)  # the same form, sent again
    order.refresh_from_db()
    assert amounts.refunded(order) == 1000 and order.refunds.count() == 1
    assert said(first) == [f"Refunded $10.00 on order {order.number}."]
    # Messages wait in the session until a page shows them: the second joins the first.
    assert said(second)[-1] == "This order was refunded meanwhile; reload it and check first."
    refused = Action.objects.get(outcome="refused")
    assert (refused.command, refused.user) == ("orders.refund", staff)


def test_a_refunded_order_cannot_be_refunded_again(client, staff):
    order = order_in("refunded", email="ada@example.com")
    page = client.get(f"/mgmt/orders/{order.number}/refund/").content.decode()
    # The confirmation says why before any click, and its button is disabled.
    assert "Not now: Only a completed order can be refunded; this one is refunded." in page
    assert 'disabled aria-describedby="refusal"' in page
    response = refund(client, order, "1", seen=amounts.refunded(order))
    assert response.status_code == 400
    assert order.refunds.count() == 1
    assert "Refund…" not in client.get(f"/mgmt/orders/{order.number}/").content.decode()


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        ("completed", "complete", "Only a pending or failed order can be completed"),
        ("refunded", "complete", "Only a pending or failed order can be completed"),
        ("pending", "retry", "Only a failed order can be retried"),
        ("completed", "retry", "Only a failed order can be retried"),
        ("pending", "resend-keys", "This order has no keys to send yet."),
        ("completed", "settle", "No failed refund is waiting on this order."),
    ],
)
def test_an_action_on_an_order_in_the_wrong_state_is_refused_in_words(
    client, staff, status, action, words
):
    order = order_in(status, email="ada@example.com")
    before = list(order.transitions.values_list("to_status", flat=True))
    response = client.post(f"/mgmt/orders/{order.number}/{action}/")
    assert response.status_code == 303
    assert words in said(response)[0]
    assert list(order.transitions.values_list("to_status", flat=True)) == before
    assert Action.objects.get().outcome == "refused"


def test_staff_complete_a_pending_order_paid_by_bank_transfer(client, staff):
    order = order_in("pending", email="ada@example.com")
    page = client.get(f"/mgmt/orders/{order.number}/complete/").content.decode()
    assert "recorded as paid outside Stripe" in page
    response = client.post(f"/mgmt/orders/{order.number}/complete/", {"note": "bank transfer"})
    order.refresh_from_db()
    assert (order.status, order.payment_method) == ("completed", "paid outside Stripe")
    assert order.transitions.last().source == f"staff:{staff.email}"
    assert said(response) == [f"Order {order.number} is completed."]
    action = Action.objects.get()
    assert (action.command, action.detail) == ("orders.complete", "bank transfer")


def test_retry_shows_the_new_payment_link_to_copy(client, staff):
    order = order_in("failed", email="ada@example.com")
    response = client.post(f"/mgmt/orders/{order.number}/retry/")
    order.refresh_from_db()
    assert order.status == "pending" and order.attempt == 2
    page = response.content.decode()
    assert f"/test-gateway/checkout/{order.stripe_session_id}/" in page
    assert 'data-copy="payment-link"' in page


def test_resend_keys_queues_the_email(client, staff):
    order = paid()
    client.post(f"/mgmt/orders/{order.number}/resend-keys/")
    assert KeyEmail.objects.filter(order=order, requested_by=staff).count() == 1


def test_suspend_and_reinstate_a_license_and_a_revoked_one_stays(client, staff):
    order = paid()
    license = order.licenses.get()
    client.post(f"/mgmt/orders/{order.number}/licenses/{license.pk}/suspend/")
    license.refresh_from_db()
    assert (license.status, license.reason, license.changed_by) == ("suspended", "staff", staff)
    client.post(f"/mgmt/orders/{order.number}/licenses/{license.pk}/reinstate/")
    license.refresh_from_db()
    assert license.status == "active"
    response = client.post(f"/mgmt/orders/{order.number}/licenses/{license.pk}/reinstate/")
    assert said(response)[-1:] == [
        "Only a suspended license can be reinstated; this one is active."
    ]
    kinds = list(Action.objects.order_by("id").values_list("command", "outcome"))
    assert kinds == [("licenses.suspend", "done"), ("licenses.reinstate", "done"),
                     ("licenses.reinstate", "refused")]  # fmt: skip


def test_another_orders_license_is_not_found(client, staff):
    order, other = paid(), paid()
    license = other.licenses.get()
    response = client.post(f"/mgmt/orders/{order.number}/licenses/{license.pk}/suspend/")
    assert response.status_code == 404


def test_a_key_is_masked_until_a_recorded_click(client, staff):
    order = paid()
    license = order.licenses.get()
    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert license.key not in page and license.masked_key in page
    shown = client.post(f"/mgmt/orders/{order.number}/licenses/{license.pk}/reveal/")
    assert license.key in shown.content.decode()
    action = Action.objects.get()
    assert (action.command, action.user, action.order) == ("licenses.reveal_key", staff, order)
    assert license.key not in action.target + action.detail


def test_a_dead_message_is_queued_again(client, staff):
    order = paid()
    destination = Destination.objects.create(name="ops", webhook_id="1", token="t")
    delivery = Delivery.objects.get(
        notification=enqueue("order.completed", {"title": "x"}, order=order),
        destination=destination,
    )
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=7)
    client.post(f"/mgmt/deliveries/{delivery.pk}/resend/")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    response = client.post(f"/mgmt/deliveries/{delivery.pk}/resend/")
    assert said(response)[-1:] == ["This message is already waiting to be sent."]


def test_destinations_are_switched_and_tested_from_mgmt(client, staff):
    destination = Destination.objects.create(
        name="ops", webhook_id="1", token="t", enabled=False, disabled_reason="Unknown Webhook"
    )
    response = client.post(f"/mgmt/notifications/{destination.pk}/test/")
    assert said(response) == ["ops is disabled: Unknown Webhook"]
    client.post(f"/mgmt/notifications/{destination.pk}/enable/")
    destination.refresh_from_db()
    assert (destination.enabled, destination.disabled_reason) == (True, "")
    client.post(f"/mgmt/notifications/{destination.pk}/test/")
    assert Delivery.objects.get(destination=destination).notification.event == "test"
    client.post(f"/mgmt/notifications/{destination.pk}/disable/")
    destination.refresh_from_db()
    assert destination.enabled is False
    assert Action.objects.filter(outcome="done").count() == 3


def test_pool_keys_are_imported_pasted_or_as_a_csv_with_duplicates_counted(client, staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    product = make_product(license_kind="pool", name="Game")
    response = client.post(
        "/mgmt/licenses/import/", {"product": product.pk, "keys": "AAA-1\nBBB-2\nAAA-1\n"}
    )
    assert said(response) == ["Game: imported 2 key(s), skipped 1 duplicate(s) or blank(s)."]
    upload = SimpleUploadedFile("keys.csv", b"key\nCCC-3\nBBB-2\n", content_type="text/csv")
    response = client.post("/mgmt/licenses/import/", {"product": product.pk, "file": upload})
    assert said(response)[-1:] == ["Game: imported 1 key(s), skipped 1 duplicate(s) or blank(s)."]
    assert PoolKey.objects.filter(product=product).count() == 3
    assert client.post("/mgmt/licenses/import/", {"product": product.pk}).status_code == 400


@pytest.mark.parametrize(
    ("typed", "currency", "shown"),
    [
        ("1,5", "usd", "Refund $1.50 (USD) to the customer?"),
        ("2,50", "eur", "Refund €2.50 (EUR) to the customer?"),
        ("1.234,50", "eur", "Refund €1,234.50 (EUR) to the customer?"),
        ("1,000", "jpy", "Refund ¥1,000 (JPY) to the customer?"),
    ],
)
def test_an_amount_is_read_as_staff_write_it_and_shown_before_any_money_moves(
    client, staff, typed, currency, shown
):
    order = paid(quantity=2, price_cents=200_000, currency=currency)
    data = {"amount": typed, "reason": "asked", "seen_returned": 0}
    review = client.post(f"/mgmt/orders/{order.number}/refund/", data)
    assert review.status_code == 200
    assert shown in review.content.decode()
    assert order.refunds.count() == 0 and not Action.objects.exists()  # nothing moved yet


def test_an_ambiguous_amount_is_asked_again_in_words(client, staff):
    order = paid(quantity=2, price_cents=200_000)
    response = refund(client, order, "1,500")
    assert response.status_code == 400
    assert "could mean 1500 or 1.50" in response.content.decode()
    assert order.refunds.count() == 0


def test_a_confirmation_for_another_amount_moves_nothing(client, staff):
    order = paid(quantity=2)
    data = {"amount": "10", "reason": "asked", "seen_returned": 0, "confirmed": 500}
    response = client.post(f"/mgmt/orders/{order.number}/refund/", data)
    assert response.status_code == 200 and "Refund $10.00 (USD)" in response.content.decode()
    assert order.refunds.count() == 0


def test_a_partial_refund_by_seat_shows_what_it_revokes_and_revokes_only_that(client, staff):
    order = paid(quantity=3)
    stranger = paid().licenses.get()
    _, second, third = order.licenses.order_by("id")
    url = f"/mgmt/orders/{order.number}/refund/"
    page = client.get(url).content.decode()
    assert f'value="{second.pk}"' in page and f'value="{stranger.pk}"' not in page
    assert second.key not in page  # a license is named by its product and number, never its key

    data = {"amount": "25", "reason": "one seat", "seen_returned": 0, "stripe_reason": "duplicate"}
    foreign = client.post(url, {**data, "seats": [stranger.pk]})
    assert foreign.status_code == 400 and not order.refunds.exists()

    review = client.post(url, {**data, "seats": [second.pk]})
    text = review.context["review"]
    assert text.startswith("Refund $25.00 (USD) to the customer? Revokes 1 license:")
    assert f"license #{second.pk}" in text and "Stripe's reason: a duplicate payment." in text
    confirmed = review.context["form"]["confirmed"].value()
    # Ticking another license after the review asks again: what was shown is what happens.
    again = client.post(url, {**data, "seats": [second.pk, third.pk], "confirmed": confirmed})
    assert again.context["review"] and not order.refunds.exists()

    client.post(url, {**data, "seats": [second.pk], "confirmed": confirmed})

    refund = order.refunds.get()
    assert (refund.amount_cents, refund.seats, refund.stripe_reason) == (
        2500,
        [second.pk],
        "duplicate",
    )
    statuses = list(order.licenses.order_by("id").values_list("status", flat=True))
    assert statuses == ["active", "revoked", "active"]
    # Stripe's event may count the refund before the shop records the staff's choice: then the
    # licenses are told in an embed of their own; either way, one embed names them.
    named = [
        n.embed for n in order.notifications.filter(event="order.refunded")
        if any(f["name"] == "Licenses revoked" and f["value"] for f in n.embed["fields"])
    ]  # fmt: skip
    assert len(named) == 1


def test_a_kuwaiti_dinar_refund_must_end_in_zero(client, staff):
    order = paid(price_cents=25_000, currency="kwd")

    response = refund(client, order, "1.235")

    assert response.status_code == 400
    assert "in steps of KWD" in response.content.decode()
    assert not order.refunds.exists()
