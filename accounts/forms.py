import unicodedata

from django import forms
from django.core.validators import EmailValidator

from .addresses import InvalidAddress, canonical_email


class MailboxValidator(EmailValidator):
    """Django's email check, with letters, marks and digits of any script in the local part
    (RFC 6531): the canonical form of a fullwidth or Cyrillic address is an address too.
    Lookalikes are told apart by exact comparison (accounts.addresses), not refused here."""

    def __call__(self, value: str) -> None:
        local, at, domain = value.rpartition("@")
        stand_in = "".join(
            "x" if not char.isascii() and unicodedata.category(char)[0] in "LMN" else char
            for char in local
        )
        super().__call__(f"{stand_in}{at}{domain}")


class MailboxField(forms.EmailField):
    """An email field whose cleaned value is the canonical address (accounts.addresses): what
    the shop stores, compares and mails."""

    default_validators = [MailboxValidator()]

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return canonical_email(value)
        except InvalidAddress as invalid:
            raise forms.ValidationError(invalid.words, code="invalid") from None
