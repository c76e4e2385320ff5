from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .addresses import InvalidAddress, canonical_email
from .time_zones import validate_time_zone


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return canonical_email(email or "")

    def get_by_natural_key(self, email: str):
        """The password login's look-up: an exact match on the canonical address."""
        try:
            return self.get(email=canonical_email(email))
        except InvalidAddress:
            raise self.model.DoesNotExist from None

    def create_user(self, email: str, password: str | None = None, **extra):
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person known by email: customers (who sign in by link) and staff (who use a password).

    `email` is always the canonical form (accounts.addresses): one mailbox, one account."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Staff: the zone /mgmt shows times in (accounts.time_zones); blank is the shop's TIME_ZONE.
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        try:
            self.email = canonical_email(self.email)
        except InvalidAddress as invalid:
            raise ValidationError({"email": invalid.words}) from None

    def save(self, *args, **kwargs) -> None:
        # Whatever path writes a user (admin, shell, a migration's model), only the canonical
        # form is stored; an address that has none is refused (InvalidAddress).
        self.email = canonical_email(self.email)
        super().save(*args, **kwargs)


def is_staff_account(user) -> bool:
    """Staff or superuser: signs in with a password (and a code), never with an emailed link."""
    return bool(user.is_staff or user.is_superuser)
