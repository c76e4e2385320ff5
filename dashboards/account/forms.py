from django import forms
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.forms import MailboxField


def safe_next(url: str) -> str:
    """`url` if it is a path on this site, else "": a link must never lead elsewhere."""
    local = url.startswith("/") and url_has_allowed_host_and_scheme(url, allowed_hosts=None)
    return url if local else ""


class LinkRequestForm(forms.Form):
    email = MailboxField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.com"}),
    )
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_next(self) -> str:
        return safe_next(self.cleaned_data.get("next") or "")
