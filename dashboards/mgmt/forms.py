from django import forms

from orders import amounts
from orders.commands import STRIPE_REASONS
from orders.models import Order
from shop.money import format_money, parse_money, smallest_refund

STRIPE_REASON_WORDS = {
    "requested_by_customer": "Requested by the customer",
    "duplicate": "A duplicate payment",
    "fraudulent": "Fraudulent (Stripe's Radar learns from it)",
}


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
    stripe_reason = forms.ChoiceField(
        label="What Stripe is told",
        choices=[(reason, STRIPE_REASON_WORDS[reason]) for reason in STRIPE_REASONS],
        initial="requested_by_customer",
        required=False,
    )
    seats = forms.TypedMultipleChoiceField(
        label="Revoke these licenses with the refund",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A refund of all that is left revokes every license anyway.",
    )
    seen_returned = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    # The effect the review step showed (amount, licenses, reason): money moves only once the
    # form still asks for exactly that.
    confirmed = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, obj: Order, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.order = order = obj
        self.left = amounts.refundable(order)
        self.fields["seen_returned"].initial = amounts.returned(order)
        self.fields["amount"].help_text = (
            f"In {order.currency.upper()}; at most {format_money(self.left, order.currency)}. "
            "Leave empty to refund all that is left."
        )
        licenses = order.licenses.exclude(status="revoked").select_related("product")
        self.licenses = {
            license.pk: f"{license.product.name}, license #{license.pk} ({license.status})"
            for license in licenses.order_by("id")
        }
        if self.licenses:
            self.fields["seats"].choices = list(self.licenses.items())
        else:
            del self.fields["seats"]

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
        step = smallest_refund(self.order.currency)
        if cents % step:
            raise forms.ValidationError(
                f"Stripe refunds {self.order.currency.upper()} in steps of "
                f"{format_money(step, self.order.currency)}."
            )
        return cents

    def clean_stripe_reason(self) -> str:
        return self.cleaned_data["stripe_reason"] or "requested_by_customer"

    def _effect(self) -> str:
        data = self.cleaned_data
        seats = ",".join(str(pk) for pk in sorted(data.get("seats") or []))
        return f"{data['amount']}|{seats}|{data['stripe_reason']}"

    def review(self) -> str:
        """What the click will do, in the order's currency, until it was shown and confirmed;
        "" once the effect confirmed is the effect asked for."""
        if self.cleaned_data.get("confirmed") == self._effect():
            return ""
        amount = self.cleaned_data["amount"]
        money = format_money(amount, self.order.currency)
        words = [f"Refund {money} ({self.order.currency.upper()}) to the customer?"]
        seats = self.cleaned_data.get("seats") or []
        if amount >= self.left:
            words.append("Every license of the order is revoked.")
        elif seats:
            named = "; ".join(self.licenses[pk] for pk in seats)
            words.append(f"Revokes {len(seats)} license{'s' if len(seats) > 1 else ''}: {named}.")
        reason = STRIPE_REASON_WORDS[self.cleaned_data["stripe_reason"]].split(" (")[0]
        words.append(f"Stripe's reason: {reason.lower()}.")
        return " ".join(words)

    def reviewed(self) -> dict:
        """The form's data with the effect shown as the one confirmed."""
        data = self.data.copy()
        data["confirmed"] = self._effect()
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
            "stripe_reason": data["stripe_reason"],
            "seats": data.get("seats") or [],
        }
