"""What the key email worker (send_key_emails) has to do, as /healthz and the /mgmt overview
show it (declared to workers.queues when the app is ready)."""

from datetime import datetime

from workers import queues

from .models import KeyEmail, KeyEmailStatus


def backlog(now: datetime) -> int:
    return KeyEmail.objects.filter(status=KeyEmailStatus.PENDING).count()


def dead() -> int:
    """Emails the mail server refused too often: they wait for staff to send them again."""
    return KeyEmail.objects.filter(status=KeyEmailStatus.DEAD).count()


def declare() -> None:
    queues.declare(
        "send_key_emails", backlog=backlog, place=1, dead=dead, dead_as="key_emails_dead"
    )
