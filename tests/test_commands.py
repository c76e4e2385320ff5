"""The command layer (issue 20): every action reachable from /mgmt, /account or the admin runs a
command; for every command and state the button, the confirmation page and run() agree; an
action and its audit record commit together or not at all."""

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.html import escape

from accounts.models import User
from audit.commands import Command
from audit.models import Action, Outcome
from licenses import commands as license_commands
from orders import amounts
from orders import commands as order_commands
from orders.checkout import start_checkout
from orders.gateways.offline import OfflineGateway
from orders.models import Order
from testkit.stripe_objects import refund_obj
from tests.account_support import order_in, tell
from tests.factories import make_order, make_product
from tests.mgmt_support import fill, mgmt_patterns, staff_member

pytestmark = pytest.mark.django_db

# /account's POSTs that sign in and out: they act on the session, not on the shop's objects.
SESSION_VIEWS = {"login", "link", "logout"}


def account_patterns() -> list[URLPattern]:
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "account":
            return list(entry.url_patterns)
    raise AssertionError("no account namespace")


def test_every_mgmt_and_account_url_that_acts_runs_a_command(client):
    client.force_login(staff_member())
    values = {"number": "NOSUCH00", "pk": 1}
    for pattern in mgmt_patterns():
        if isinstance(getattr(pattern.callback, "command", None), Command):
            continue
        # Anything else only reads: it refuses a POST before looking anything up.
        assert client.post(fill(pattern, values)).status_code == 405, pattern.name
    for pattern in account_patterns():
        if pattern.name not in SESSION_VIEWS and "POST" in _methods(pattern):
            assert isinstance(getattr(pattern.callback, "command", None), Command), pattern.name


def _methods(pattern: URLPattern) -> set[str]:
    request = RequestFactory().options("/")
    request.user = User(email="x@example.com")
    response = pattern.callback(request, **dict.fromkeys(pattern.pattern.converters, "X"))
    return set(response.get("Allow", "GET, POST").replace(" ", "").split(","))


def test_every_admin_action_runs_a_command():
    boss = User.objects.create_superuser("root@example.com", "pw")
    request = RequestFactory().get("/admin/")
    request.user = boss
    for model, model_admin in admin.site._registry.items():
        for name, (action, _, _) in model_admin.get_actions(request).items():
            if name == "delete_selected":
                continue  # the catalog's own editing: Django's admin history records it
            assert isinstance(getattr(action, "command", None), Command), (model, name)


# States an order can be in, made as the shop would make them.


def pending() -> Order:
    order = make_order()
    start_checkout(order)
    return Order.objects.get(pk=order.pk)


def in_flight() -> Order:
    order = pending()
    OfflineGateway().pay(order.stripe_session_id, method="sepa_debit")
    return _delivered(order)


def completed() -> Order:
    order = pending()
    OfflineGateway().pay(order.stripe_session_id)
    return _delivered(order)


def failed() -> Order:
    order = pending()
    OfflineGateway().decline(order.stripe_session_id)
    return _delivered(order)


def refunded() -> Order:
    order = completed()
    OfflineGateway().create_refund(
        payment_intent=order.stripe_payment_intent_id,
        amount=order.total_cents,
        idempotency_key=f"test-{order.number}",
        metadata={},
    )
    return _delivered(order)


def disputed() -> Order:
    order = completed()
    OfflineGateway().open_dispute(order.stripe_payment_intent_id)
    return _delivered(order)


def refund_failed() -> Order:
    order = completed()
    tell(order, "refund.created", {**refund_obj(order, "re_1", 1000), **_ids(order)})
    failed_refund = {**refund_obj(order, "re_1", 1000, "failed"), **_ids(order)}
    tell(order, "refund.updated", failed_refund)
    return order


def _ids(order: Order) -> dict:
    return {"payment_intent": order.stripe_payment_intent_id, "charge": order.stripe_charge_id}


def _delivered(order: Order) -> Order:
    from orders.offline_events import deliver_due_events

    deliver_due_events()
    return Order.objects.get(pk=order.pk)


ORDER_STATES = {
    "pending": pending,
    "pending, bank debit in flight": in_flight,
    "completed": completed,
    "failed": failed,
    "refunded": refunded,
    "disputed": disputed,
    "completed, a refund failed": refund_failed,
}
ORDER_COMMANDS = {
    "complete": (order_commands.complete, {"note": "wire"}),
    "refund": (order_commands.refund, {"amount": "", "reason": "asked"}),
    "retry": (order_commands.retry, {}),
    "settle": (order_commands.settle, {}),
    "resend-keys": (license_commands.resend_order_keys, {}),
    "test-dispute/open": (order_commands.open_test_dispute, {}),
    "test-dispute/won": (order_commands.close_test_dispute_won, {}),
    "test-dispute/lost": (order_commands.close_test_dispute_lost, {}),
    "test-radar/warning": (order_commands.raise_test_fraud_warning, {}),
    "test-radar/review/open": (order_commands.open_test_review, {}),
    "test-radar/review/approve": (order_commands.approve_test_review, {}),
}


def said(response) -> tuple[list[str], list[str]]:
    messages = list(get_messages(response.wsgi_request))
    return (
        [str(m) for m in messages if m.level_tag == "error"],
        [str(m) for m in messages if m.level_tag == "success"],
    )


@pytest.mark.parametrize("state", ORDER_STATES)
@pytest.mark.parametrize("path", ORDER_COMMANDS)
def test_the_button_the_confirmation_and_run_agree_for_every_order_state(state, path, client):
    command, data = ORDER_COMMANDS[path]
    owner = staff_member()
    client.force_login(owner)
    order = ORDER_STATES[state]()
    reason = command.refusal(order, by=owner)
    button = command.button(order, by=owner, url="")
    url = f"/mgmt/orders/{order.number}/{path}/"

    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    confirm = client.get(url).content.decode()
    if "seen_returned" in confirm:
        data = {**data, "seen_returned": amounts.returned(order)}
        review = client.post(url, data)  # the exact amount is shown before the money moves
        if "review" in (review.context or {}):
            data = {**data, "confirmed": review.context["form"]["confirmed"].value()}
    response = client.post(url, data, HTTP_REFERER=url)
    errors, successes = said(response)

    if button is None:
        assert f'href="{url}"' not in page  # not drawn
    elif button.enabled:
        assert f'href="{url}"' in page
    else:
        assert escape(button.reason) in page and f'href="{url}"' not in page  # disabled, in words
    if reason:
        assert f"Not now: {escape(reason)}" in confirm
        assert errors == [reason] and not successes, (errors, successes)
    else:
        assert "Not now:" not in confirm
        assert not errors and response.status_code in (200, 303), (errors, response.status_code)


LICENSE_STATES = ["active", "suspended by staff", "suspended by a dispute", "revoked", "pending"]


def license_in(state: str):
    if state == "pending":
        order = order_in(
            "pending", email="ada@example.com", product=make_product(license_kind="pool")
        )
        order_commands.complete.run(order, by=User.objects.get(email="boss@example.com"))
        return order.licenses.get()
    order = {"suspended by a dispute": disputed, "revoked": refunded}.get(state, completed)()
    license = order.licenses.get()
    if state == "suspended by staff":
        license_commands.suspend.run(license, by=User.objects.get(email="boss@example.com"))
    return license.__class__.objects.get(pk=license.pk)


@pytest.mark.parametrize("state", LICENSE_STATES)
@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("suspend", license_commands.suspend),
        ("reinstate", license_commands.reinstate),
        ("reveal", license_commands.reveal_key),
    ],
)
def test_the_button_the_confirmation_and_run_agree_for_every_license_state(
    state, path, command, client
):
    owner = staff_member("boss@example.com")
    client.force_login(owner)
    license = license_in(state)
    reason = command.refusal(license, by=owner)
    url = f"/mgmt/orders/{license.order.number}/licenses/{license.pk}/{path}/"

    confirm = client.get(url).content.decode()
    response = client.post(url)
    errors, _ = said(response)

    if reason:
        assert f"Not now: {escape(reason)}" in confirm and errors == [reason]
    else:
        assert "Not now:" not in confirm and not errors
    assert Action.objects.filter(command=command.name).latest("id").outcome == (
        Outcome.REFUSED if reason else Outcome.DONE
    )


class Crash(Exception):
    pass


@pytest.fixture
def crash_at_the_record(monkeypatch):
    """The process dies after the command acted and before its audit record is written."""
    real = Command.record

    def record(self, obj, **kwargs):
        if kwargs.get("outcome", Outcome.DONE) == Outcome.DONE:
            raise Crash
        return real(self, obj, **kwargs)

    monkeypatch.setattr(Command, "record", record)


def test_a_crash_between_the_action_and_its_record_leaves_neither(crash_at_the_record):
    boss = staff_member("boss@example.com")
    license = completed().licenses.get()
    with pytest.raises(Crash):
        license_commands.suspend.run(license, by=boss)
    license.refresh_from_db()
    assert license.status == "active"  # the suspension went with the record
    order = refund_failed()
    with pytest.raises(Crash):
        order_commands.settle.run(order, by=boss)
    order.refresh_from_db()
    assert order.refund_failed_at is not None
    assert not Action.objects.filter(outcome=Outcome.DONE).exists()


def test_a_customer_command_runs_only_on_the_customers_own_order():
    order = failed()
    stranger = User.objects.create_user("eve@example.com")
    assert order_commands.pay_again.refusal(order, by=stranger) == "This order is not yours."
    assert license_commands.resend_my_keys.refusal(completed(), by=stranger) == (
        "This order is not yours."
    )
    staff = Client()
    staff.force_login(stranger)
    response = staff.post(f"/account/orders/{order.number}/pay-again/")
    assert response.status_code == 404  # another customer's order is not found at all


@pytest.mark.parametrize("won", [None, False, True], ids=["open", "lost", "won"])
def test_the_test_gateway_refuses_a_refund_as_stripe_does_while_a_chargeback_holds_the_money(won):
    """Stripe answers charge_disputed to a refund of a charged-back charge (open or lost); the
    offline gateway, which plays Stripe in test mode, refuses it too, whoever calls it."""
    from orders.gateways import REFUSED_REFUNDS, GatewayError

    order = completed()
    gateway = OfflineGateway()
    dispute = gateway.open_dispute(order.stripe_payment_intent_id)
    if won is not None:
        gateway.close_dispute(dispute["id"], won=won)

    def refund():
        return gateway.create_refund(
            payment_intent=order.stripe_payment_intent_id,
            amount=500,
            idempotency_key=f"test-{order.number}-{won}",
            metadata={},
        )

    if won:
        assert refund()["status"] == "succeeded"
    else:
        with pytest.raises(GatewayError) as refused:
            refund()
        assert refused.value.code == "charge_disputed"
        assert str(refused.value) == REFUSED_REFUNDS["charge_disputed"]
