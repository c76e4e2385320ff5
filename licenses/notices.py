"""What the buyer is told by email as their order moves: a bank payment that failed, a refund
(on its way, made, failed), a chargeback opened or closed, a key suspended or reinstated by the shop.

Each notice is a row in the key-email outbox (KeyEmail), written by a receiver of `orders`' signals
(or by the licenses' own suspend and reinstate) in the transaction of the change, and sent by the
`send_key_emails` worker, never from a request. It is rendered now, in the words of the moment, and
names a license by its product and the last characters of its key, never the whole key. A notice
carries its change's `reference` (a refund's id; a dispute's id and what it became: "dp_1:chargeback",
"dp_1:closed:won"): the unique constraint on (order, kind, reference) keeps a change told twice by
Stripe to one email.
"""

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from orders.disputes import INQUIRY
from orders.models import Dispute, Order, Refund
from shop.money import format_money

from .models import KeyEmail, KeyEmailKind, License

Kind = KeyEmailKind


def queue_notice(order: Order, kind: str, *, reference: str = "", **context) -> None:
    """Write the notice `kind` about `order`, unless this change (`reference`) was told already."""
    KeyEmail.objects.bulk_create(
        [notice(order, kind, reference=reference, **context)], ignore_conflicts=True
    )


def notice(order: Order, kind: str, *, reference: str = "", **context) -> KeyEmail:
    """The notice `kind` about `order`, unsaved: several are written in one statement."""
    context |= {
        "order": order,
        "order_url": settings.SITE_URL + reverse("orders:detail", args=[order.public_id]),
        "account_url": settings.SITE_URL + reverse("account:order", args=[order.number]),
    }
    text = render_to_string(f"licenses/notices/{kind}.txt", context).strip()
    subject, body = text.split("\n", 1)
    return KeyEmail(
        order=order,
        kind=kind,
        reference=reference,
        subject=subject.strip()[:200],
        body=body.strip() + "\n",
    )


def _licenses(order: Order) -> list[License]:
    return list(order.licenses.select_related("product").order_by("id"))


def bank_payment_failed(order: Order, *, message: str, checkout) -> None:
    """A bank debit failed: the buyer can pay again (or continue an open checkout)."""
    queue_notice(
        order,
        Kind.PAYMENT_FAILED,
        reference=f"attempt-{order.attempt}",
        message=message,
        checkout=checkout,
        total=format_money(order.total_cents, order.currency),
    )


def _refund_context(order: Order, refund: Refund) -> dict:
    return {
        "amount": format_money(refund.amount_cents, refund.currency or order.currency),
        "reason": refund.reason.replace("_", " "),
        "total": format_money(order.total_cents, order.currency),
    }


def refund_made(
    order: Order, refund: Refund, *, refunded_total: int, fully: bool, reference: str = ""
) -> None:
    """A refund counts as money returned: its amount, and the licenses it revoked (all of them
    when it completes the refund, else the seats staff chose to go with it)."""
    seats = set(refund.seats or [])
    revoked = [
        license
        for license in _licenses(order)
        if license.status == "revoked" and (fully or license.pk in seats)
    ]
    queue_notice(
        order,
        Kind.REFUNDED,
        reference=reference or refund.stripe_refund_id,
        refunded_total=format_money(refunded_total, order.currency),
        fully=fully,
        revoked=revoked,
        **_refund_context(order, refund),
    )


def refund_pending(order: Order, refund: Refund) -> None:
    queue_notice(
        order,
        Kind.REFUND_PENDING,
        reference=refund.stripe_refund_id,
        **_refund_context(order, refund),
    )


def refund_failed(order: Order, refund: Refund) -> None:
    queue_notice(
        order,
        Kind.REFUND_FAILED,
        reference=refund.stripe_refund_id,
        **_refund_context(order, refund),
    )


def dispute_changed(order: Order, dispute: Dispute, change: str) -> None:
    """Opened (an inquiry or a chargeback; an inquiry escalated is a chargeback opened) and closed
    (with its outcome, after an appeal too). An appeal changes nothing for the buyer's keys, so it
    is not told until it closes, unless it is the first the shop hears of the chargeback (its
    events came late): then it is the chargeback's opening, told once like any other."""
    if change in ("opened", "escalated", "appealed"):
        inquiry = change == "opened" and dispute.status in INQUIRY
        queue_notice(
            order,
            Kind.DISPUTE_OPENED,
            # An inquiry, then its chargeback: two emails; a chargeback told twice: one.
            reference=f"{dispute.stripe_dispute_id}:{'inquiry' if inquiry else 'chargeback'}",
            inquiry=inquiry,
            amount=format_money(dispute.amount_cents, dispute.currency or order.currency),
            licenses=_licenses(order),
        )
    elif change == "closed":
        queue_notice(
            order,
            Kind.DISPUTE_CLOSED,
            # One email per outcome: events that come late may tell an outcome at another stage
            # (a won appeal seen before the appeal), never another outcome.
            reference=f"{dispute.stripe_dispute_id}:closed:{dispute.status}",
            outcome=dispute.status,
            inquiry=dispute.status in INQUIRY,
            amount=format_money(dispute.amount_cents, dispute.currency or order.currency),
            licenses=_licenses(order),
        )


def license_suspended(license: License) -> None:
    queue_notice(license.order, Kind.SUSPENDED, license=license)


def license_reinstated(license: License) -> None:
    queue_notice(license.order, Kind.REINSTATED, license=license)
