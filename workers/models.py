from django.db import models


class Heartbeat(models.Model):
    """A running worker says it is alive; /healthz reads the freshest of each kind."""

    kind = models.CharField(
        max_length=50, help_text="The management command, e.g. deliver_notifications."
    )
    name = models.CharField(max_length=100, unique=True, help_text="host:pid")
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.name} seen {self.seen_at}"
