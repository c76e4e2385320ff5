from django import forms

from orders import amounts
from orders.models import Order
from shop.money import format_money, parse_money


class CompleteForm(forms.Form):
    note = forms.CharField(
        max_length=100,
        required=False,
        help_text="How the customer paid (bank transfer, cash…); shown as the payment method.",
    )

    def __init__(self, *args, obj: Order, **kwargs) -> None:
        super().__init__(*args, **kwargs)


class RefundForm(forms.Form):
    """An amount in the order's currency (blank: all that is left), bounded by what is left;
    `seen_returned` is what the page showed as already refunded (a stale form is refused)."""

    amount = forms.CharField(required=False, max_length=30)
    reason = forms.CharField(
        max_length=200, help_text="The customer reads it in their order's history."
    )
    seen_returned = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    # The amount the review step showed, in minor units: the money moves only once it matches.
    confirmed = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, obj: Order, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.order = order = obj
        self.left = amounts.refundable(order)
        self.fields["seen_returned"].initial = amounts.returned(order)
        self.fields["amount"].help_text = (
            f"In {order.currency.upper()}; at most {format_money(self.left, order.currency)}. "
            "Leave empty to refund all that is left."
        )

    def clean_amount(self) -> int:
        text = self.cleaned_data["amount"]
        if not text:
            return self.left
        try:
            cents = parse_money(text, self.order.currency)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        if cents <= 0:
            raise forms.ValidationError("A refund must be more than zero.")
        if cents > self.left:
            most = format_money(self.left, self.order.currency)
            raise forms.ValidationError(f"Only {most} is left to refund on this order.")
        return cents

    def review(self) -> str:
        """What the click will do, in the order's currency, until it was shown and confirmed;
        "" once the amount confirmed is the amount typed."""
        amount = self.cleaned_data["amount"]
        if self.cleaned_data.get("confirmed") == amount:
            return ""
        money = format_money(amount, self.order.currency)
        return f"Refund {money} ({self.order.currency.upper()}) to the customer?"

    def reviewed(self) -> dict:
        """The form's data with the amount shown as the one confirmed."""
        data = self.data.copy()
        data["confirmed"] = str(self.cleaned_data["amount"])
        return data

    def button(self) -> str:
        return f"Refund {format_money(self.cleaned_data['amount'], self.order.currency)}"

    def params(self) -> dict:
        """The refund command's parameters."""
        data = self.cleaned_data
        return {
            "amount_cents": data["amount"],
            "reason": data["reason"],
            "seen_returned": data["seen_returned"],
        }
