"""Renewals: a customer buys more time for a license they have, and keeps its key.

A renewal is an order of its own (Order.is_renewal) for the license's product, at today's price
and today's license days. When it is paid the license's expiry moves on by those days, from its
current expiry or, if it had expired, from the payment; a refund or a lost chargeback of the
renewal moves it back, unless it has moved again since. Runs in the order's transition
(receivers.py), so the extension commits with the payment that bought it.
"""

from datetime import timedelta

from django.utils import timezone

from orders.checkout import place_order
from orders.models import Order

from .emails import queue_key_email
from .models import License, Renewal


def start_renewal(license: License, *, by) -> Order:
    """A pending renewal order for `license`, for its owner (`by`); checkout comes next."""
    order = place_order(
        product=license.product, quantity=1, email=license.order.email, user=by, is_renewal=True
    )
    Renewal.objects.create(order=order, license=license, days=license.product.license_days)
    return order


def waiting_renewal(license: License) -> Order | None:
    """A renewal of `license` not paid yet (pending, or failed and payable again). Reads
    `license.renewals.all()`, so a page that prefetched them (with their orders) asks nothing."""
    waiting = [
        renewal.order
        for renewal in license.renewals.all()
        if renewal.order.paid_at is None and renewal.order.status in ("pending", "failed")
    ]
    return max(waiting, key=lambda order: order.pk, default=None)


def extend(order: Order) -> None:
    """The renewal `order` was paid: move its license's expiry on (once; again after a refund of
    it was undone by a won appeal)."""
    renewal = Renewal.objects.select_for_update().select_related("license").get(order=order)
    if renewal.extended_to and not renewal.taken_back_at:
        return
    license = License.objects.select_for_update().get(pk=renewal.license_id)
    now = timezone.now()
    start = max(license.expires_at or now, now)
    renewal.previous_expires_at, renewal.taken_back_at = license.expires_at, None
    renewal.extended_to = license.expires_at = start + timedelta(days=renewal.days)
    license.save(update_fields=["expires_at"])
    renewal.save(update_fields=["previous_expires_at", "extended_to", "taken_back_at"])
    queue_key_email(order.pk)  # "renewed until …", with the same key


def take_back(order: Order) -> None:
    """The renewal `order`'s money went back (refund, lost chargeback): its extension goes too,
    unless the license's expiry moved since (a later renewal), which then stands."""
    renewal = Renewal.objects.select_for_update().filter(order=order).first()
    if renewal is None or renewal.extended_to is None or renewal.taken_back_at:
        return
    license = License.objects.select_for_update().get(pk=renewal.license_id)
    if license.expires_at == renewal.extended_to:
        license.expires_at = renewal.previous_expires_at
        license.save(update_fields=["expires_at"])
    renewal.taken_back_at = timezone.now()
    renewal.save(update_fields=["taken_back_at"])
