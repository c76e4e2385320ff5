"""Shared by the /account tests: customers, orders in each status told by real events, links."""

import re

from django.core import mail
from django.test import Client

from accounts.models import User
from orders.checkout import start_checkout
from orders.models import Order, Product
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import (
    charge_obj,
    dispute_obj,
    intent_failed_obj,
    make_event,
    refund_obj,
    session_obj,
)
from tests.factories import make_order

LINK = re.compile(r"https?://[^\s\"']+(/account/login/[^/\s\"']+/)")


def customer(email: str, **fields) -> User:
    return User.objects.filter(email=email).first() or User.objects.create_user(email, **fields)


def sign_in(client, email: str, **fields) -> User:
    user = customer(email, **fields)
    client.force_login(user)
    return user


OWNER, OTHER, STAFF = "ada@example.com", "bob@example.com", "boss@example.com"


def client_as(who: str) -> Client:
    """A client signed in as "owner" (the buyer), "other" (another customer) or "staff" (a
    superuser who bought nothing); "anonymous" or anything else: signed out."""
    client = Client()
    if who == "owner":
        sign_in(client, OWNER)
    elif who == "other":
        sign_in(client, OTHER)
    elif who == "staff":
        sign_in(client, STAFF, is_staff=True, is_superuser=True)
    return client


def tell(order: Order, event_type: str, obj: dict) -> None:
    """Deliver one Stripe event for `order` through the real handler."""
    handle_stripe_event(make_event(event_type, obj))
    order.refresh_from_db()


def order_in(
    status: str, *, email: str, product: Product | None = None, quantity: int = 1
) -> Order:
    """An order brought to `status` by the events that would bring it there."""
    order = make_order(email=email, product=product, quantity=quantity)
    start_checkout(order)  # a real (offline) Checkout Session, as pay-again needs
    order.refresh_from_db()
    if status == "failed":
        tell(order, "payment_intent.payment_failed", intent_failed_obj(order, "insufficient_funds"))
    if status in ("completed", "refunded", "disputed"):
        tell(order, "checkout.session.completed", session_obj(order))
    if status == "refunded":
        total = order.total_cents
        tell(
            order,
            "refund.created",
            {
                **refund_obj(order, f"re_{order.number}", total),
                "metadata": {"reason": "requested_by_customer"},
            },
        )
        tell(order, "charge.refunded", charge_obj(order, refunded=total))
    if status == "disputed":
        tell(order, "charge.dispute.created", dispute_obj(order, f"dp_{order.number}"))
    assert order.status == status
    return order


def link_path(text: str) -> str:
    """The path of the sign-in link in an email or a page."""
    match = LINK.search(text)
    assert match, f"no sign-in link in {text!r}"
    return match.group(1)


def emailed_link(index: int = -1) -> str:
    return link_path(mail.outbox[index].body)


def ask_for_link(client, email: str, *, next_url: str = "", address: str = "127.0.0.1"):
    data = {"email": email, "next": next_url}
    return client.post("/account/login/", data, REMOTE_ADDR=address)
