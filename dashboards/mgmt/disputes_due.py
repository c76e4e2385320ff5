"""Disputes staff must answer, the evidence deadline soonest first."""

from django.db.models import F

from orders import disputes
from orders.models import Dispute


def needing_response(*, limit: int) -> list[Dispute]:
    rows = Dispute.objects.filter(status__in=disputes.NEEDS_RESPONSE).select_related("order")
    return list(rows.order_by(F("evidence_due_by").asc(nulls_last=True), "id")[:limit])
