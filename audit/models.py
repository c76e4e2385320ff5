from django.conf import settings
from django.db import models
from django.db.models import Q


class Outcome(models.TextChoices):
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"
    # An outside call (a Stripe refund) was asked for and its answer is not recorded yet: a crash
    # between the call and its record leaves this, never no trace at all.
    STARTED = "started", "Asked, answer not recorded"


class Action(models.Model):
    """Who ran which command on what, and how it ended: every command writes one, staff on /mgmt
    or in the admin and customers on /account alike, in the transaction that acts (a refused
    attempt too, in its own). Written by audit.commands only."""

    Outcome = Outcome

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    command = models.CharField(max_length=60, help_text='"orders.refund", "licenses.suspend", …')
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    target = models.CharField(max_length=255, blank=True, help_text="License, delivery, …")
    detail = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome, default=Outcome.DONE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="audit_action_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.command} {self.order or self.target}: {self.outcome}"

    @property
    def label(self) -> str:
        """The command in words, as its button says it ("Refund"), or its name if it is gone."""
        from .commands import label_of

        return label_of(self.command)
