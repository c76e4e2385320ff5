"""The statuses Stripe gives refunds and disputes, defined once: the models' choices, the checks
of an event's shape (event_shapes), the order of a dispute's stages (disputes) and a refund's
ladder (Refund.RANK) all read them here."""

from django.db import models


class RefundStatus(models.TextChoices):
    """Stripe's refund statuses; a refund only climbs Refund.RANK through them."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class DisputeStatus(models.TextChoices):
    """Stripe's dispute statuses (API 2026-10-28.endive); orders.disputes orders them."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs response"
    WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
    WARNING_CLOSED = "warning_closed", "Inquiry closed"
    NEEDS_RESPONSE = "needs_response", "Chargeback: needs response"
    UNDER_REVIEW = "under_review", "Chargeback: under review"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    PREVENTED = "prevented", "Prevented"
    APPEAL_NEEDS_RESPONSE = "appeal_needs_response", "Appeal: needs response"
    APPEAL_UNDER_REVIEW = "appeal_under_review", "Appeal: under review"
