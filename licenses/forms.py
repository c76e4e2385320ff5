from django import forms

from orders.models import LicenseKind, Product

from .pool import parse_keys


class ImportKeysForm(forms.Form):
    """Pool keys pasted or uploaded (text, one per line, or CSV with the keys first), for /mgmt
    and the admin alike."""

    product = forms.ModelChoiceField(Product.objects.filter(license_kind=LicenseKind.POOL))
    keys = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), required=False, help_text="One key per line."
    )
    file = forms.FileField(
        required=False, help_text="Or a text file (one key per line) or CSV (keys first)."
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("keys") and not cleaned.get("file"):
            raise forms.ValidationError("Paste keys or choose a file.")
        return cleaned

    def parsed_keys(self) -> list[str]:
        """The keys given; UnicodeDecodeError for a file that is not UTF-8 text."""
        upload = self.cleaned_data["file"]
        return parse_keys(upload.read() if upload else self.cleaned_data["keys"])
