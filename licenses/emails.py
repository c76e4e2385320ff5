"""The email with an order's keys: queued in the transaction of the change, sent by the
`manage.py send_key_emails` worker (never from a web request or the Stripe webhook), retried with
backoff while the mail server is away."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import KeyEmail

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def queue_key_email(order_id: int, *, requested_by=None) -> KeyEmail:
    return KeyEmail.objects.create(order_id=order_id, requested_by=requested_by)


def resend_keys(order, *, staff) -> KeyEmail:
    """Staff: send the order's keys again (an email went astray, the customer lost it)."""
    if not order.licenses.exclude(key="").exists():
        raise ValueError("This order has no keys to send yet.")
    with transaction.atomic():
        return queue_key_email(order.pk, requested_by=staff)


# How long a worker owns an email it is sending: past that, another worker may send it again (a
# crash between sending and recording costs a duplicate email, never a lost one).
LEASE = timedelta(minutes=10)


def send_key_emails(*, limit: int = 50) -> int:
    """Send the due key emails. Each is claimed (a short transaction that locks only its own
    row), sent with no transaction open, then recorded, so a slow mail server holds no lock on
    the order. Returns how many were sent."""
    sent = 0
    while sent < limit and (claimed := _claim()) is not None:
        email, lease = claimed
        # Recorded only while the lease is ours: a worker that outlived it changes nothing.
        mine = KeyEmail.objects.filter(pk=email.pk, next_attempt_at=lease)
        try:
            _send(email)
        except Exception as error:  # the mail server's problem: keep the row for a retry
            attempts = email.attempts + 1
            # 1, 2, 4 … minutes, at most 6 hours: a mail server outage is rarely short.
            backoff = timedelta(minutes=min(2 ** (attempts - 1), 360))
            mine.update(
                attempts=attempts,
                last_error=f"{type(error).__name__}: {error}"[:300],
                next_attempt_at=timezone.now() + backoff,
            )
            log.warning("key email for order %s not sent: %s", email.order_id, type(error).__name__)
        else:
            mine.update(sent_at=timezone.now(), last_error="", next_attempt_at=None)
            sent += 1
    return sent


def _claim() -> tuple[KeyEmail, datetime] | None:
    """The next due email and the lease taken on it. Attempts are counted when the mail server
    refuses, so a worker that dies while sending costs a retry, never the email."""
    now = timezone.now()
    due = KeyEmail.objects.filter(sent_at=None, attempts__lt=MAX_ATTEMPTS).filter(
        Q(next_attempt_at=None) | Q(next_attempt_at__lte=now)
    )
    skip = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        email = due.select_for_update(skip_locked=skip, of=("self",)).order_by("id").first()
        if email is None:
            return None
        email.next_attempt_at = now + LEASE
        email.save(update_fields=["next_attempt_at"])
    return email, email.next_attempt_at


def _send(email: KeyEmail) -> None:
    order = email.order
    licenses = order.licenses.select_related("product").order_by("id")
    context = {
        "order": order,
        "licenses": licenses,
        "order_url": settings.SITE_URL + reverse("orders:detail", args=[order.public_id]),
    }
    send_mail(
        subject=f"Your license keys for order {order.number}",
        message=render_to_string("licenses/key_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.email],
    )
