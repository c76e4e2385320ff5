"""Licenses follow their order: issued on completion, suspended by a dispute, reinstated when that
dispute is won, revoked on refund or a lost chargeback (and active again if an appeal wins the
money back). Runs inside the order's transition (see receivers.py)."""

from datetime import timedelta

from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders import disputes
from orders.models import Dispute, LicenseKind, Order
from shop import rows

from . import notices, statements
from .activations import end_revoked_activations
from .emails import queue_key_email
from .keys import generate_key, hash_key
from .models import KeyEmail, License, LicenseStatus, SuspensionReason
from .pool import alert_if_low, claim_pool_key, fill_waiting

Status = LicenseStatus


def issue_licenses(
    order: Order,
    *,
    with_keys: bool = True,
    reason: str = SuspensionReason.REFUND,
    first_time: bool = False,
) -> list[License]:
    """One license per unit bought, once per order. Without keys (a refund that came before the
    payment) the licenses are recorded revoked, and no pool key is spent on them. `first_time`:
    the caller knows the order has none yet (it spares a look)."""
    if not first_time and order.licenses.exists():
        return []
    now = timezone.now()
    issued, pool_claims = [], {}
    chargeback = _lost_dispute_id(order) if reason == SuspensionReason.CHARGEBACK else ""
    for item in order.line_items():
        product = item.product
        if product.license_kind == LicenseKind.NONE:
            continue
        for _ in range(item.quantity):
            license = License(order=order, product=product, status=Status.ACTIVE, activated_at=now)
            _copy_terms(license, now)
            if not with_keys:
                license.status, license.activated_at = Status.REVOKED, None
                license.reason, license.revoked_at = reason, now
                license.dispute_id = chargeback
            elif _give_key(license):
                if product.license_kind == LicenseKind.POOL:
                    pool_claims[product] = pool_claims.get(product, 0) + 1
            else:
                license.status, license.activated_at = Status.PENDING, None
            issued.append(license)
    rows.insert_all(issued)  # License.objects.bulk_create(issued), without its checks
    for product in {lic.product for lic in issued if lic.product.license_kind == LicenseKind.POOL}:
        waiting = any(lic.status == Status.PENDING and lic.product == product for lic in issued)
        alert_if_low(product, claimed=pool_claims.get(product, 0), waiting=waiting)
    if with_keys:  # the keys, or for an order with none to issue, its receipt
        queue_key_email(order.pk)
    return issued


def _copy_terms(license: License, now) -> None:
    """The product's terms as they are when the license is issued: a product edited later
    changes no license already sold."""
    license.max_activations = license.product.max_activations
    days = license.product.license_days
    license.expires_at = now + timedelta(days=days) if days else None


def _give_key(license: License) -> bool:
    """A generated key, or the oldest key in stock of a pool product (False: none left)."""
    if license.product.license_kind == LicenseKind.GENERATED:
        license.key = generate_key(license.product.license_prefix)
        license.key_hash = hash_key(license.key)
        return True
    return claim_pool_key(license)


def _lost_dispute_id(order: Order) -> str:
    lost = order.disputes.filter(status=Dispute.Status.LOST).order_by("id").first()
    return lost.stripe_dispute_id if lost else ""


def suspend_for_dispute(order: Order) -> int:
    """Suspend the order's active and pending licenses with the id of its first open dispute
    (one written-out UPDATE: the ORM's Coalesce(Subquery(…)) cost more CPU to build than the
    statement took)."""
    return statements.suspend_for_dispute(order.pk, timezone.now())


def reinstate_after_dispute(order: Order) -> int:
    """Lift only the suspensions made by disputes that are now closed in our favour, and the
    revocations of a chargeback won on appeal (the money came back); a staff suspension stays."""
    won = order.disputes.filter(status__in=disputes.FAVOURABLE).values("stripe_dispute_id")
    undone = order.licenses.filter(dispute_id__in=won).filter(
        Q(status=Status.SUSPENDED, reason=SuspensionReason.DISPUTE)
        | Q(status=Status.REVOKED, reason=SuspensionReason.CHARGEBACK)
    )
    undone = list(undone.select_related("product"))
    # Licenses recorded revoked before the payment was ever told (a chargeback that came first)
    # never had a key: they get one now.
    keyed = [license for license in undone if not license.key and _give_key(license)]
    for license in keyed:
        license.save(update_fields=["key", "key_hash", "pool_key"])
    for product in {lic.product for lic in keyed if lic.product.license_kind == LicenseKind.POOL}:
        alert_if_low(product, claimed=sum(lic.product == product for lic in keyed), waiting=False)
    if keyed:
        queue_key_email(order.pk)
    return sum(_reinstate(license) for license in undone)


def _reinstate(license: License) -> int:
    license.status = Status.ACTIVE if license.key else Status.PENDING
    license.reason, license.dispute_id = "", ""
    license.suspended_at = license.revoked_at = None
    license.activated_at = license.activated_at or (timezone.now() if license.key else None)
    fields = ["status", "reason", "dispute_id", "suspended_at", "revoked_at", "activated_at"]
    license.save(update_fields=fields)
    return 1


def revoke_all(order: Order, *, reason: str) -> int:
    """Final: a revoked license never comes back (a new grant is a new key), except after a
    chargeback won on appeal, so a chargeback's revocation names its dispute."""
    chargeback = reason == SuspensionReason.CHARGEBACK
    now = timezone.now()
    revoked = statements.revoke_licenses(
        order.pk, reason=reason, now=now, dispute_id=_lost_dispute_id(order) if chargeback else None
    )
    if revoked:
        end_revoked_activations(order.pk, now)
    return revoked


def revoke_seats(order: Order, license_ids: list[int]) -> int:
    """A partial refund by seat: revoke the order's own licenses staff chose (never another
    order's, whatever ids were asked for), and end their devices' activations."""
    now = timezone.now()
    revoked = (
        License.objects.filter(order=order, pk__in=license_ids)
        .exclude(status=Status.REVOKED)
        .update(
            status=Status.REVOKED, reason=SuspensionReason.REFUND, revoked_at=now, changed_at=now
        )
    )
    if revoked:
        end_revoked_activations(order.pk, now)
    return revoked


def suspend_license(license: License, *, staff) -> License:
    """Staff suspend the locked `license` (licenses.commands decides whether they may)."""
    license.status, license.reason, license.dispute_id = (
        Status.SUSPENDED,
        SuspensionReason.STAFF,
        "",
    )
    license.suspended_at = license.changed_at = timezone.now()
    license.changed_by = staff
    license.save(
        update_fields=["status", "reason", "dispute_id", "suspended_at", "changed_by", "changed_at"]
    )
    notices.license_suspended(license)
    return license


def reinstate_license(license: License, *, staff) -> License:
    """Staff make the locked, suspended `license` active again (or revoked, if its order was
    refunded meanwhile: _reinstate follows the order)."""
    license.changed_by, license.changed_at = staff, timezone.now()
    license.save(update_fields=["changed_by", "changed_at"])
    _reinstate(license)
    notices.license_reinstated(license)
    return license


def hold_for_review(order: Order) -> int:
    """A Radar review holds the payment: the order's active and pending licenses are suspended
    (reason review) until it closes in a way that releases them (orders.models.Review)."""
    return License.objects.filter(order=order, status__in=[Status.ACTIVE, Status.PENDING]).update(
        status=Status.SUSPENDED,
        reason=SuspensionReason.REVIEW,
        dispute_id="",
        suspended_at=timezone.now(),
    )


def release_after_review(order: Order, *, review_id: str) -> int:
    """Lift the review's hold (never a staff or dispute suspension); an order disputed
    meanwhile has its licenses suspended for the dispute instead. The buyer, who saw the keys
    on hold, is told each one works (once per license and review). A fixed number of
    statements, whatever the number of licenses."""
    held = order.licenses.filter(status=Status.SUSPENDED, reason=SuspensionReason.REVIEW)
    now = timezone.now()
    released = list(held.select_related("product").order_by("id"))
    if not released:
        return 0
    lifted = {"reason": "", "dispute_id": "", "suspended_at": None, "revoked_at": None}
    held.filter(key="").update(status=Status.PENDING, **lifted)
    held.exclude(key="").update(
        status=Status.ACTIVE, activated_at=Coalesce("activated_at", Value(now)), **lifted
    )
    if order.status == "disputed":
        suspend_for_dispute(order)
        return len(released)
    # Pool licenses that waited for a key under the hold: keys imported meanwhile skipped them.
    for product in {lic.product for lic in released if not lic.key}:
        if product.license_kind == "pool":
            fill_waiting(product)
    for license in released:  # as they are now, for the notice's words
        license.status = Status.ACTIVE if license.key else Status.PENDING
        license.reason = ""
    KeyEmail.objects.bulk_create(
        [
            notices.notice(
                order, notices.Kind.REINSTATED, reference=f"{review_id}:{license.pk}"[:120],
                license=license,
            )
            for license in released
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    return len(released)
