"""The staff order list: tabs, search, date range, sort, and keyset pages that cost the same on
page 1 and page 5,000 (no OFFSET, and tab counts stop at COUNT_LIMIT)."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.addresses import InvalidAddress, canonical_email
from dashboards.statements import bounded_counts
from orders.amounts import TOTAL
from orders.models import Dispute, Order, Refund, Status

PAGE_SIZE = 50
COUNT_LIMIT = 1_000
TABS = ["", *Status.values]  # "" is All
SORTS = {"newest": "Newest first", "oldest": "Oldest first", "total": "Largest total"}
ORDER_NUMBER = re.compile(r"[0-9A-HJKMNP-TV-Z]{8}")
# Stripe id prefixes and where the order keeps (or its refunds and disputes keep) each id.
STRIPE_IDS = {
    "cs_": "stripe_session_id",
    "pi_": "stripe_payment_intent_id",
    "ch_": "stripe_charge_id",
    "py_": "stripe_charge_id",
}


# Every order the shop will ever hold is inside; the bounds keep a day's start and end (in any
# time zone) far from datetime's limits, which until=9999-12-31 used to overflow (a 500).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
OUT_OF_RANGE = "Dates run from 1 January 2000 to 31 December 2999"
# Errors staff are told about; anything else malformed (a hand-edited URL) is ignored.
TOLD = {"range", "reversed"}


# Failed orders, told apart without a sixth status: the buyer left the checkout (it expired), or
# a payment was refused (a decline, a failed bank debit, a Stripe error).
FAILURES = {"abandoned": "Checkout abandoned", "refused": "Payment refused"}
ABANDONED = Q(failure_code="expired")


class OrderFilter(forms.Form):
    status = forms.ChoiceField(choices=[(tab, tab) for tab in TABS], required=False)
    failure = forms.ChoiceField(choices=list(FAILURES.items()), required=False)
    q = forms.CharField(required=False, max_length=255, strip=True)
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    after = forms.CharField(required=False, max_length=40)

    def clean_since(self) -> date | None:
        return _in_range(self.cleaned_data["since"])

    def clean_until(self) -> date | None:
        return _in_range(self.cleaned_data["until"])

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            message = "“From” is after “To”: no order can be in between"
            raise forms.ValidationError(message, code="reversed")
        return cleaned


def _in_range(day: date | None) -> date | None:
    if day and not FIRST_DAY <= day <= LAST_DAY:
        raise forms.ValidationError(OUT_OF_RANGE, code="range")
    return day


@dataclass(frozen=True)
class Criteria:
    status: str = ""
    failure: str = ""  # with status "failed": "abandoned" or "refused"
    q: str = ""
    since: date | None = None
    until: date | None = None
    sort: str = "newest"
    after: tuple[int, int] | None = None  # the last row of the previous page: (sort key, id)
    params: dict[str, str] = field(default_factory=dict)  # the query string, without `after`
    problems: tuple[str, ...] = ()  # dates out of range or reversed: shown, and not applied


def criteria_from(data) -> Criteria:
    """Read the query string. Dates out of range or reversed are left out and told (`problems`);
    anything else malformed is ignored."""
    form = OrderFilter(data)
    problems = [] if form.is_valid() else _problems(form)
    clean = {name: value for name, value in form.cleaned_data.items() if value}
    if problems:
        clean.pop("since", None)
        clean.pop("until", None)
    after = _cursor(clean.pop("after", ""))
    params = {name: str(value) for name, value in clean.items()}
    return Criteria(**clean, after=after, params=params, problems=tuple(problems))


def _problems(form: OrderFilter) -> list[str]:
    told = [
        error.messages[0]
        for errors in form.errors.as_data().values()
        for error in errors
        if error.code in TOLD
    ]
    return [f"{message}: the dates are not applied." for message in dict.fromkeys(told)]


def _cursor(text: str) -> tuple[int, int] | None:
    try:
        key, pk = (int(part) for part in text.split("_"))
    except ValueError:
        return None
    return key, pk


def search(q: str) -> Q:
    """Order number, email, or a Stripe id (session, PaymentIntent, charge, refund, dispute)."""
    if "@" in q:
        return Q(email=_address(q))
    for prefix, column in STRIPE_IDS.items():
        if q.startswith(prefix):
            return Q(**{column: q})
    if q.startswith(("re_", "pyr_")):
        return Q(pk__in=Refund.objects.filter(stripe_refund_id=q).values("order_id"))
    if q.startswith(("dp_", "du_")):
        return Q(pk__in=Dispute.objects.filter(stripe_dispute_id=q).values("order_id"))
    if ORDER_NUMBER.fullmatch(q.upper()):
        return Q(number=q.upper())
    return Q(email=_address(q)) | Q(number=q.upper())


def _address(q: str) -> str:
    """Orders store canonical addresses: so any spelling staff type finds them."""
    try:
        return canonical_email(q)
    except InvalidAddress:
        return q.lower()


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered(criteria: Criteria, *, with_status: bool = True) -> QuerySet[Order]:
    orders = Order.objects.all()
    if with_status and criteria.status:
        orders = orders.filter(status=criteria.status)
    if with_status and criteria.status == Status.FAILED and criteria.failure:
        orders = (
            orders.filter(ABANDONED)
            if criteria.failure == "abandoned"
            else orders.exclude(ABANDONED)
        )
    if criteria.q:
        orders = orders.filter(search(criteria.q))
    if criteria.since:
        orders = orders.filter(created_at__gte=_day_start(criteria.since))
    if criteria.until:
        orders = orders.filter(created_at__lt=_day_start(criteria.until) + timedelta(days=1))
    return orders


def sorted_page(orders: QuerySet[Order], criteria: Criteria) -> QuerySet[Order]:
    """Orders in the chosen sort, after the cursor: the id breaks ties, so no row is skipped or
    shown twice. Ids grow with creation, so "newest" sorts by id and walks the primary key."""
    after = criteria.after
    if criteria.sort == "total":
        orders = orders.annotate(sort_key=TOTAL)
        if after:
            orders = orders.filter(Q(sort_key__lt=after[0]) | Q(sort_key=after[0], pk__lt=after[1]))
        return orders.order_by("-sort_key", "-pk")
    if criteria.sort == "oldest":
        return (orders.filter(pk__gt=after[1]) if after else orders).order_by("pk")
    return (orders.filter(pk__lt=after[1]) if after else orders).order_by("-pk")


def cursor_of(order: Order, criteria: Criteria) -> str:
    key = getattr(order, "sort_key", order.pk) if criteria.sort == "total" else order.pk
    return f"{key}_{order.pk}"


def tab_counts(criteria: Criteria) -> dict[str, int]:
    """How many orders each tab holds under the search and dates, counted up to COUNT_LIMIT + 1
    (shown as "1,000+"): one statement of one short index scan per tab, however many orders
    there are."""
    base = filtered(criteria, with_status=False)
    tabs = {tab: base.filter(status=tab) if tab else base for tab in TABS}
    return bounded_counts(tabs, COUNT_LIMIT + 1)


def chunks(rows: QuerySet, size: int = 2000) -> Iterator[list[tuple]]:
    """Every row of `rows` (a values_list whose first value is the order's id), newest first,
    a chunk at a time (keyset: constant memory however many there are)."""
    last = None
    while True:
        page = rows.filter(pk__lt=last) if last else rows
        found = list(page.order_by("-pk")[:size])
        if not found:
            return
        yield found
        last = found[-1][0]
