from django import forms

from accounts.forms import MailboxField


class BuyForm(forms.Form):
    email = MailboxField(required=False)
    quantity = forms.IntegerField(min_value=1, max_value=100, initial=1, required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not (user and user.is_authenticated):
            self.fields["email"].required = True

    def clean_quantity(self) -> int:
        return self.cleaned_data.get("quantity") or 1

    def buyer_email(self) -> str:
        if self.user and self.user.is_authenticated:
            return self.user.email
        return self.cleaned_data["email"]


class TestCheckoutForm(forms.Form):
    ACTIONS = [
        ("pay", "Pay with card 4242"),
        ("decline", "Card declined"),
        ("insufficient_funds", "Card declined: insufficient funds"),
        ("delayed_success", "Bank debit that succeeds later"),
        ("delayed_failure", "Bank debit that fails later"),
        ("expire", "Let the session expire"),
    ]
    action = forms.ChoiceField(choices=[*ACTIONS, ("apply_code", "Apply")])
    # STRIPE_ALLOW_PROMOTION_CODES: what the buyer types (TEST10 in TEST MODE).
    promotion_code = forms.CharField(required=False, max_length=40, strip=True)
