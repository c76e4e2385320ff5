from django.db import models
from django.utils import timezone


class LoginLinkUse(models.Model):
    """A sign-in link that has been used. Links are signed, so only their use needs a row: the
    unique nonce makes a link work once, even when two requests race with it."""

    nonce = models.CharField(max_length=64, unique=True)
    email = models.EmailField()
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"sign-in link for {self.email} used {self.used_at:%Y-%m-%d %H:%M}"
