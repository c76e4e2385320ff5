"""What of the notifications app may be pruned past its age (workers.retention runs it): a
notification whose every delivery was sent (or that had no destination), with its deliveries and
their attempts. One with a pending or dead delivery stays: it is work left or staff's to resend."""

from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from workers.retention import Prunable, delete_rows

from .models import Delivery, DeliveryStatus, Notification


def delivered_notifications(cutoff: datetime) -> QuerySet:
    unfinished = Delivery.objects.filter(
        notification=OuterRef("pk"), status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD]
    )
    return Notification.objects.filter(created_at__lt=cutoff).exclude(Exists(unfinished))


PRUNABLE = [Prunable("notifications", "deleted", delivered_notifications, delete_rows)]
