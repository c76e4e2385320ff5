"""The email with an order's keys: queued in the transaction of the change, sent by the
`manage.py send_key_emails` worker (never from a web request or the Stripe webhook), retried with
backoff while the mail server is away."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from orders.receipt import build_receipt
from shop.rows import insert
from workers.command import when_database_answers

from .models import KeyEmail, KeyEmailKind, KeyEmailStatus, License, LicenseStatus

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10


def queue_key_email(order_id: int, *, requested_by=None) -> KeyEmail:
    return insert(KeyEmail(order_id=order_id, requested_by=requested_by))


def queue_expiry_reminders(*, now: datetime | None = None) -> int:
    """Queue a reminder for each active license that expires within LICENSE_EXPIRY_REMINDER_DAYS
    and has none for that expiry date yet; returns how many. Run by the key-email worker, never
    by a request. Two workers at once queue each reminder once: the unique constraint on
    (license, expires_at) drops the second."""
    now = now or timezone.now()
    soon = now + timedelta(days=settings.LICENSE_EXPIRY_REMINDER_DAYS)
    reminded = KeyEmail.objects.filter(
        kind=KeyEmailKind.EXPIRY, license=OuterRef("pk"), expires_at=OuterRef("expires_at")
    )
    expiring = License.objects.filter(
        status=LicenseStatus.ACTIVE, expires_at__gt=now, expires_at__lte=soon
    ).exclude(Exists(reminded))
    reminders = [
        KeyEmail(order_id=order_id, kind=KeyEmailKind.EXPIRY, license_id=pk, expires_at=expires_at)
        for pk, order_id, expires_at in expiring.values_list("pk", "order_id", "expires_at")
    ]
    return len(KeyEmail.objects.bulk_create(reminders, ignore_conflicts=True))


def resend_keys(order, *, by) -> KeyEmail:
    """Send the order's keys again (an email went astray, the customer lost it); licenses.commands
    decides who may, and when."""
    return queue_key_email(order.pk, requested_by=by if by and by.is_staff else None)


# How long a worker owns an email it is sending: past that, another worker may send it again (a
# crash between sending and recording costs a duplicate email, never a lost one).
LEASE = timedelta(minutes=10)


def send_key_emails(*, limit: int = 50) -> int:
    """Send up to `limit` due key emails; returns how many were sent. Each is claimed (a short
    transaction that locks only its own row), sent with no transaction open, then recorded, so a
    slow mail server holds no lock on the order. Every attempt counts against `limit`, and the
    first failure ends the tick: while the mail server is away each tick costs one timeout
    (EMAIL_TIMEOUT), not one per due email."""
    sent = 0
    for _ in range(limit):
        claimed = _claim()
        if claimed is None:
            break
        if not _attempt(*claimed):
            break
        sent += 1
    return sent


def _attempt(email: KeyEmail, lease: datetime) -> bool:
    # Recorded only while the lease is ours: a worker that outlived it changes nothing.
    mine = KeyEmail.objects.filter(pk=email.pk, next_attempt_at=lease)
    # Written before the try: the database going away here is no mail failure, and the claimed
    # email waits for it rather than for its lease.
    message = when_database_answers(lambda: _message(email))
    if message is None:  # a reminder that no longer applies
        mine.update(status=KeyEmailStatus.SENT, last_error=SKIPPED, next_attempt_at=None)
        return True
    try:
        message.send()
    except Exception as error:  # the mail server's problem: keep the row for a retry
        attempts = email.attempts + 1
        failed = {"attempts": attempts, "last_error": f"{type(error).__name__}: {error}"[:300]}
        if attempts >= MAX_ATTEMPTS:
            mine.update(**failed, status=KeyEmailStatus.DEAD, next_attempt_at=None)
        else:
            # 1, 2, 4 … minutes, at most 6 hours: a mail server outage is rarely short.
            backoff = timedelta(minutes=min(2 ** (attempts - 1), 360))
            mine.update(**failed, next_attempt_at=timezone.now() + backoff)
        log.warning(
            "key email %s for order %s not sent (attempt %s): %s",
            email.pk,
            email.order_id,
            attempts,
            type(error).__name__,
        )
        return False
    # The email is out: losing this record (the database away at this moment) would send it
    # again after the lease, so it waits for the database.
    sent_at = timezone.now()
    when_database_answers(
        lambda: mine.update(
            status=KeyEmailStatus.SENT, sent_at=sent_at, last_error="", next_attempt_at=None
        )
    )
    log.info("key email %s for order %s sent", email.pk, email.order_id)
    return True


def _claim() -> tuple[KeyEmail, datetime] | None:
    """The next due email and the lease taken on it. Attempts are counted when the mail server
    refuses, so a worker that dies while sending costs a retry, never the email."""
    now = timezone.now()
    due = KeyEmail.objects.filter(status=KeyEmailStatus.PENDING).filter(
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


def _message(email: KeyEmail) -> EmailMessage | None:
    if email.kind == KeyEmailKind.EXPIRY:
        return _reminder(email)
    order = email.order
    if email.kind != KeyEmailKind.KEYS:  # a notice, written when its change happened
        return EmailMessage(
            subject=email.subject,
            body=email.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[order.email],
        )
    licenses = order.licenses.select_related("product").order_by("id")
    if order.is_renewal:  # the renewed license, with its key and its new expiry
        licenses = License.objects.filter(renewals__order=order).select_related("product")
    licenses = list(licenses)
    context = {
        "order": order,
        "licenses": licenses,
        "receipt": build_receipt(order),
        "order_url": settings.SITE_URL + reverse("orders:detail", args=[order.public_id]),
    }
    if order.is_renewal:
        subject = "Your license renewed"
    elif licenses:
        subject = "Your license keys"
    else:  # nothing to issue (a service): the receipt alone
        subject = "Your receipt"
    return EmailMessage(
        subject=f"{subject} for order {order.number}",
        body=render_to_string("licenses/key_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )


SKIPPED = "not sent: the license is no longer active, or its expiry moved"


def _reminder(email: KeyEmail) -> EmailMessage | None:
    license, order = email.license, email.order
    if license.status != LicenseStatus.ACTIVE or license.expires_at != email.expires_at:
        return None
    context = {
        "order": order,
        "license": license,
        "expires_at": email.expires_at,
        "order_url": settings.SITE_URL + reverse("orders:detail", args=[order.public_id]),
        "account_url": settings.SITE_URL + reverse("account:order", args=[order.number]),
    }
    return EmailMessage(
        subject=f"Your {license.product.name} license expires soon",
        body=render_to_string("licenses/expiry_reminder_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )


def email_log(order) -> list[KeyEmail]:
    """The emails sent (or to be sent) to the order's buyer, oldest first, each with `state` in
    words: what the order's pages list (one query)."""
    emails = list(KeyEmail.objects.filter(order=order).order_by("created_at", "id"))
    for email in emails:
        email.state = _state(email)
    return emails


def _state(email: KeyEmail) -> str:
    if email.status == KeyEmailStatus.SENT and email.last_error == SKIPPED:
        return "not sent: no longer applied"
    if email.status == KeyEmailStatus.SENT:
        return "sent"
    if email.status == KeyEmailStatus.DEAD:
        return "failed: not delivered"
    return "retrying" if email.attempts else "waiting to be sent"
