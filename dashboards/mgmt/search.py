"""The staff order list: tabs, search, date range, sort, and keyset pages that cost the same on
page 1 and page 5,000 (no OFFSET, and tab counts stop at COUNT_LIMIT)."""

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import reduce
from operator import or_

from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.lookups import Exact
from django.utils import timezone

from accounts.addresses import InvalidAddress, canonical_email
from dashboards.statements import bounded_counts, planned_for_each_value
from orders.amounts import TOTAL
from orders.models import Dispute, Order, OrderItem, Product, Refund, Status
from orders.payment_methods import BRANDS, TYPES, WALLETS
from shop.money import THREE_DECIMAL, ZERO_DECIMAL, parse_money

PAGE_SIZE = 50
COUNT_LIMIT = 1_000
SAMPLE_LIMIT = COUNT_LIMIT  # under a search, the matches whose statuses are counted in one scan
TABS = ["", *Status.values]  # "" is All
SORTS = {"newest": "Newest first", "oldest": "Oldest first", "total": "Largest total"}
# Stripe id prefixes and where the order keeps (or its refunds and disputes keep) each id.
STRIPE_IDS = {
    "cs_": "stripe_session_id",
    "pi_": "stripe_payment_intent_id",
    "ch_": "stripe_charge_id",
    "py_": "stripe_charge_id",
}


# An amount as staff type it ("49", "49.00", "49,00", "1 234,50"), read by shop.money for each
# precision a currency can have; the largest amount a column holds (64-bit) bounds it.
AMOUNT = re.compile(r"[0-9][0-9 .,]{0,30}")
LARGEST = 2**63 - 1
PRECISIONS = {  # a currency of each precision, and the currencies that share it
    "jpy": Q(currency__in=[code.lower() for code in ZERO_DECIMAL]),
    "kwd": Q(currency__in=[code.lower() for code in THREE_DECIMAL]),
    "usd": ~Q(currency__in=[code.lower() for code in ZERO_DECIMAL | THREE_DECIMAL]),
}
# Payment methods to filter by, as orders.payment_methods words them ("Visa •••• 4242",
# "Apple Pay (Visa •••• 4242)", "SEPA Direct Debit •••• 3000"): each is the words it starts with.
METHODS = {
    "card": ("Card", [*BRANDS.values(), "Card"]),
    **{f"wallet:{key}": (name, [name]) for key, name in WALLETS.items() if key != "link"},
    **{key: (name, [name]) for key, name in TYPES.items() if key not in ("card", "card_present")},
    "outside": ("Paid outside Stripe", ["paid outside Stripe"]),
}
CURRENCY = r"^[A-Za-z]{3}$"


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
    product = forms.SlugField(required=False, max_length=50)
    currency = forms.RegexField(CURRENCY, required=False)
    method = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in METHODS.items()], required=False
    )
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    after = forms.CharField(required=False, max_length=40)

    def clean_since(self) -> date | None:
        return _in_range(self.cleaned_data["since"])

    def clean_until(self) -> date | None:
        return _in_range(self.cleaned_data["until"])

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].lower()

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
    product: str = ""  # a product's slug
    currency: str = ""  # lower case, as orders keep it
    method: str = ""  # a key of METHODS
    since: date | None = None
    until: date | None = None
    sort: str = "newest"
    after: tuple[int, int] | None = None  # the last row of the previous page: (sort key, id)
    params: dict[str, str] = field(default_factory=dict)  # the query string, without `after`
    problems: tuple[str, ...] = ()  # dates out of range or reversed: shown, and not applied

    @property
    def searching(self) -> bool:
        """A search or a filter whose statements need plans made for their values."""
        return bool(self.q or self.product or self.currency or self.method)


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
    """What staff type: a Stripe id (session, PaymentIntent, charge, refund, dispute) finds its
    order; anything else is looked for as an order number, in part of an email, a name, a
    product's name or a payment method ("4242", a card's last four digits), and as an amount."""
    for prefix, column in STRIPE_IDS.items():
        if q.startswith(prefix):
            return Q(**{column: q})
    if q.startswith(("re_", "pyr_")):
        return Q(pk__in=Refund.objects.filter(stripe_refund_id=q).values("order_id"))
    if q.startswith(("dp_", "du_")):
        return Q(pk__in=Dispute.objects.filter(stripe_dispute_id=q).values("order_id"))
    found = (
        Q(number=q.upper().removeprefix("#"))  # the CSV writes #5GES9024
        | Q(email__icontains=q)
        | Q(customer_name__icontains=q)
        | Q(payment_method__icontains=q)
    )
    if "@" in q:
        found |= Q(email=_address(q))  # a spelling whose canonical form differs (IDNA, case)
    return found | Q(product_names__icontains=q) | _amount(q)


def _amount(q: str) -> Q:
    """Orders whose total is the amount typed, in each currency it can be read in ("49" is
    $49.00, ¥49 and 49.000 KWD); nothing when it is not an amount."""
    if not AMOUNT.fullmatch(q):
        return Q(pk__in=[])
    found = Q(pk__in=[])
    for currency, currencies in PRECISIONS.items():
        try:
            minor = parse_money(q, currency)
        except (ValueError, ArithmeticError):
            continue
        if 0 <= minor <= LARGEST:
            found |= Q(Exact(TOTAL, minor)) & currencies
    return found


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
    if criteria.product:
        products = Product.objects.filter(slug=criteria.product).values("pk")
        orders = orders.filter(
            Exists(OrderItem.objects.filter(order=OuterRef("pk"), product__in=products))
        )
    if criteria.currency:
        orders = orders.filter(currency=criteria.currency)
    if criteria.method:
        starts = METHODS[criteria.method][1]
        orders = orders.filter(reduce(or_, (Q(payment_method__istartswith=w) for w in starts)))
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


def tab_counts(criteria: Criteria) -> dict[str, str]:
    """How many orders each tab holds under the search and dates, in words: counted up to
    COUNT_LIMIT + 1 (shown as "1,000+"), one statement of one short index scan per tab, however
    many orders there are. Under a search or a filter, one scan instead (`_sampled_counts`)."""
    if criteria.searching:
        return _sampled_counts(criteria)
    base = filtered(criteria, with_status=False)
    tabs = {tab: base.filter(status=tab) if tab else base for tab in TABS}
    counts = bounded_counts(tabs, COUNT_LIMIT + 1)
    return {tab: f"{COUNT_LIMIT:,}+" if n > COUNT_LIMIT else f"{n:,}" for tab, n in counts.items()}


def _sampled_counts(criteria: Criteria) -> dict[str, str]:
    """The statuses of up to SAMPLE_LIMIT matching orders, read once: exact counts when there
    are fewer, else each count is what was seen, "at least" (1,200+). A count per tab would
    walk a search's matches once per tab, and a rare status under a common match all of them."""
    seen = list(
        filtered(criteria, with_status=False)
        .order_by()
        .values_list("status", flat=True)[: SAMPLE_LIMIT + 1]
    )
    counts = Counter(seen[:SAMPLE_LIMIT])
    counts[""] = min(len(seen), SAMPLE_LIMIT)
    if len(seen) > SAMPLE_LIMIT:
        return {tab: f"{counts[tab]:,}+" for tab in TABS}
    return {tab: f"{counts[tab]:,}" for tab in TABS}


def chunks(
    orders: QuerySet[Order], size: int = 2000, *, searching: bool = False
) -> Iterator[list[Order]]:
    """Every order of `orders`, newest first, a chunk at a time (keyset: constant memory
    however many there are); `searching`: Criteria.searching."""
    last = None
    while True:
        page = orders.filter(pk__lt=last) if last else orders
        with planned_for_each_value(searching):
            found = list(page.order_by("-pk")[:size])
        if not found:
            return
        yield found
        last = found[-1].pk
