"""The CSV a spreadsheet reads right: decimal amounts beside their currency, times it recognises
in the staff member's zone (named), refunded and net from the ledger, products, payment method,
order numbers that never turn into numbers, no formulas, and a file name with the filter."""

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine

from accounts.models import User
from orders.models import Order
from testkit import stripe_objects as so
from tests.account_support import order_in, tell
from tests.factories import make_order, make_product
from tests.mgmt_support import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(client):
    client.force_login(staff_member(role="Finance"))
    return client


def exported(client, query: str = "") -> tuple[list[dict], object]:
    response = client.get(f"/mgmt/orders/export.csv{query}")
    assert response.status_code == 200 and response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text))), response


def test_amounts_are_decimals_beside_their_currency_with_refunded_and_net(finance):
    order = order_in("completed", email="ada@example.com", product=make_product(price_cents=4900))
    tell(order, "refund.created", so.refund_obj(order, "re_1", 1250))
    tell(order, "charge.refunded", so.charge_obj(order, refunded=1250))  # its card, too
    yen = order_in("completed", email="jo@example.com",
                   product=make_product(price_cents=1999, currency="jpy"))  # fmt: skip
    rows = {row["number"]: row for row in exported(finance)[0]}
    row = rows["#" + order.number]
    assert (row["total"], row["currency"], row["total_cents"]) == ("49.00", "USD", "4900")
    assert (row["refunded"], row["net"]) == ("12.50", "36.50")
    assert row["payment_method"] == "Visa •••• 4242"
    assert row["products"].endswith("× 1")
    assert (rows["#" + yen.number]["total"], rows["#" + yen.number]["currency"]) == ("1999", "JPY")


def test_an_unpaid_order_has_no_net_and_no_paid_at(finance):
    make_order()
    row = exported(finance)[0][0]
    assert row["paid_at"] == "" and row["net"] == "" and row["refunded"] == "0.00"


def test_times_are_in_the_members_zone_written_as_spreadsheets_read_them(finance):
    User.objects.filter(email="staff@example.com").update(time_zone="Asia/Tokyo")
    order = order_in("completed", email="ada@example.com")
    Order.objects.filter(pk=order.pk).update(
        created_at=datetime(2026, 12, 7, 23, 30, tzinfo=UTC),
        paid_at=datetime(2026, 12, 7, 23, 31, 5, tzinfo=UTC),
    )
    row = exported(finance)[0][0]
    assert row["created_at"] == "2026-12-08 08:30:00" and row["paid_at"] == "2026-12-08 08:31:05"
    assert row["time_zone"] == "Asia/Tokyo"


@pytest.mark.parametrize("number", ["00012345", "1E500000", "12345678", "0000000E"])
def test_order_numbers_never_read_as_numbers(finance, number):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(number=number)
    row = exported(finance)[0][0]
    assert row["number"] == "#" + number
    assert finance.get("/mgmt/orders/", {"q": "#" + number}).context["rows"][0].number == number


def test_text_a_spreadsheet_would_run_stays_text(finance):
    order = make_order(email="=1+1@example.com", product=make_product(name="@SUM(A1)"))
    Order.objects.filter(pk=order.pk).update(customer_name="+cmd|' /C calc'!A0")
    row = exported(finance)[0][0]
    assert row["email"].startswith("'=") and row["name"].startswith("'+")
    assert row["products"].startswith("'@")


def test_the_file_is_named_for_its_filter_and_day(finance):
    make_order(product=make_product(slug="book"))
    with time_machine.travel(datetime(2026, 12, 7, 12, tzinfo=UTC), tick=False):
        response = exported(finance, "?status=pending&product=book&method=card&since=2026-12-01")[1]
    assert response["Content-Disposition"] == (
        'attachment; filename="orders-pending-book-card-from-2026-12-01-2026-12-07.csv"'
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"


def test_a_search_with_odd_words_still_names_the_file_safely(finance):
    make_order(email="ada@example.com")
    response = exported(finance, "?q=ada%22%0d%0aX-Evil:%201")[1]
    disposition = response["Content-Disposition"]
    assert "\n" not in disposition and "\r" not in disposition
    assert disposition.startswith('attachment; filename="orders-search-ada')


def test_the_csv_reads_every_chunk_with_a_bounded_number_of_queries(
    finance, monkeypatch, django_assert_max_num_queries
):
    from dashboards.mgmt import export, search

    real = search.chunks
    monkeypatch.setattr(export, "chunks", lambda orders, **kw: real(orders, size=2, **kw))
    for _ in range(5):
        make_order()
    # Per chunk of 2: the orders, their licenses, refunds and items (3 chunks and the empty
    # one that ends it), plus the session, the user and the audit record.
    with django_assert_max_num_queries(3 * 4 + 1 + 8):
        rows, _ = exported(finance)
    assert len(rows) == 5


def test_discount_and_tax_are_columns_when_orders_record_them(finance):
    order = make_order(product=make_product(price_cents=4900))
    totals = {"amount_discount": 1000, "amount_shipping": 0, "amount_tax": 390}
    tell(order, "checkout.session.completed",
         so.session_obj(order, amount_total=4290, total_details=totals))  # fmt: skip
    row = exported(finance)[0][0]
    assert (row["discount"], row["tax"], row["total"]) == ("10.00", "3.90", "42.90")
