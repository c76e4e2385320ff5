"""Staff's order list at 200,000 orders: /mgmt/orders/ next to the Django admin's changelist.

    .venv/bin/python -m bench.mgmt_orders [--orders 200000] [--repeat 15]
        [--database-url postgres://postgres@127.0.0.1:5432/bench_mgmt]

Creates its own PostgreSQL database, fills it in a few INSERT … SELECT statements (orders in
every status with items, licenses, a Stripe event and a status change each, refunds and
disputes), then times each case in-process with Django's test client as a signed-in superuser
(server time: URL routing, middleware, queries and template, no network), `--repeat` times after
a warm-up, and prints p50 and p90 in ms side by side with the admin's changelist for the same
filter and rows; then the searches and filters as staff type them (part of an email, a name, a
product, an amount, a card's last four digits; product, currency and payment method) beside the
admin's `icontains` search for the same words. The CSV export is timed over every order, and its peak Python memory
(tracemalloc) is measured on exports of a tenth and of all the orders: constant memory means the
same peak for both. See docs/benchmarks.md.
"""

import argparse
import html
import re
import statistics
import sys
import time
import tracemalloc
from urllib.parse import urlencode

from bench import harness

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_mgmt"
MARKER_TABLE = "bench_mgmt_marker"
STATUSES = "CASE WHEN g % 20 < 13 THEN 'completed' WHEN g % 20 < 16 THEN 'pending' " \
    "WHEN g % 20 < 18 THEN 'failed' WHEN g % 20 < 19 THEN 'refunded' ELSE 'disputed' END"  # fmt: skip
PAID = "status IN ('completed', 'refunded', 'disputed')"
# What the searches meet: four domains, 100 names (one order in ten a Lovelace), one order in a
# thousand charged $49.00 (a tax or a discount), cards with 10,000 endings, SEPA debits, wallets.
DOMAINS = "(ARRAY['example.com', 'mail.test', 'shop.example', 'corp.test'])[1 + g % 4]"
NAMES = "(ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'John', " \
    "'Margaret', 'Ken'])[1 + g / 7 % 10] || ' ' || (ARRAY['Lovelace', 'Hopper', 'Turing', " \
    "'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Backus', 'Hamilton', 'Thompson'])[1 + g % 10]"  # fmt: skip
CHARGED = "CASE WHEN g % 1000 = 7 THEN 4900 ELSE 1000 * (1 + g % 3) END"
METHODS = "CASE WHEN g % 8 = 5 THEN 'SEPA Direct Debit •••• ' || lpad((g % 10000)::text, 4, '0') " \
    "WHEN g % 8 = 6 THEN 'Apple Pay (Visa •••• ' || lpad((g % 10000)::text, 4, '0') || ')' " \
    "ELSE 'Visa •••• ' || lpad((g % 10000)::text, 4, '0') END"  # fmt: skip

SEED = [
    """INSERT INTO orders_product (slug, name, description, price_cents, currency, active,
         license_kind, license_prefix, stock_alert_threshold)
       SELECT 'product-' || p, 'Product ' || p, '', 1000 * p, 'usd', true, 'generated', '', 5
       FROM generate_series(1, 3) p""",
    f"""INSERT INTO orders_order (number, public_id, status, email, customer_name, currency,
         subtotal_cents, amount_total_cents, livemode, attempt, stripe_session_id,
         stripe_payment_intent_id, stripe_charge_id, paid_at, paid_source, payment_method,
         async_payment_pending, failure_code, failure_message, charge_amount_refunded_cents,
         created_at, updated_at, disputes_summary, open_dispute_reason, refunds_succeeded_cents,
         failure_source, is_renewal, chargebacks_cents, dispute_fees_cents, refund_refusals,
         stripe_invoice_id, invoice_links_for, invoice_url, invoice_pdf_url, product_names,
         discount_cents, tax_cents, fraud_actionable, fraud_type, review_hold)
       SELECT 'B' || lpad(upper(to_hex(g)), 7, '0'), md5(g::text)::uuid, {STATUSES},
         'buyer' || (g % 50000) || '@' || {DOMAINS}, {NAMES},
         CASE WHEN g % 10 = 9 THEN 'eur' ELSE 'usd' END, 1000 * (1 + g % 3), {CHARGED},
         false, 1, 'cs_test_' || g, 'pi_test_' || g, 'ch_test_' || g,
         CASE WHEN {STATUSES} IN ('completed', 'refunded', 'disputed')
           THEN now() - (%(n)s - g) * interval '40 seconds' END,
         '', CASE WHEN {STATUSES} IN ('completed', 'refunded', 'disputed') THEN {METHODS}
           ELSE '' END,
         false, CASE WHEN {STATUSES} = 'failed' THEN 'card_declined' ELSE '' END,
         '', 0, now() - (%(n)s - g) * interval '40 seconds',
         now() - (%(n)s - g) * interval '40 seconds',
         CASE WHEN {STATUSES} = 'disputed' THEN 'open' ELSE '' END, '',
         CASE WHEN {STATUSES} = 'refunded' THEN 1000 * (1 + g % 3) ELSE 0 END, '',
         false, 0, 0, 0, '', '', '', '', 'Product ' || (1 + g % 3), 0, 0, false, '', false
       FROM generate_series(1, %(n)s) g""",
    """INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price_cents)
       SELECT o.id, p.id, 1, o.subtotal_cents FROM orders_order o
       JOIN orders_product p ON p.price_cents = o.subtotal_cents""",
    f"""INSERT INTO licenses_license (order_id, product_id, status, reason, dispute_id, key,
         key_hash, created_at, activated_at, public_id)
       SELECT o.id, i.product_id, CASE o.status WHEN 'completed' THEN 'active'
         WHEN 'refunded' THEN 'revoked' ELSE 'suspended' END, '', '', 'KEY-' || o.id,
         md5('key' || o.id), o.created_at, o.created_at, md5('license' || o.id)::uuid
       FROM orders_order o JOIN orders_orderitem i ON i.order_id = o.id WHERE o.{PAID}""",
    """INSERT INTO orders_stripeevent (id, type, livemode, created, payload, payment_intent_id,
         charge_id, outcome, detail, received_at, order_id, api_version)
       SELECT 'evt_' || id, 'checkout.session.completed', false,
         extract(epoch FROM created_at)::bigint, '{"bench": true}', '', '', 'applied', '',
         created_at, id, '2026-10-28.endive' FROM orders_order""",
    """INSERT INTO orders_ordertransition (order_id, from_status, to_status, source, reason,
         created_at)
       SELECT id, '', 'pending', 'checkout', 'order placed', created_at FROM orders_order""",
    """INSERT INTO orders_refund (order_id, stripe_refund_id, amount_cents, currency, status,
         reason, failure_reason, created_at, updated_at, succeeded_once, reported_by_charge,
         seats, stripe_reason)
       SELECT id, 're_test_' || id, subtotal_cents, 'usd', 'succeeded', '', '', created_at,
         created_at, true, false, '[]', '' FROM orders_order WHERE status = 'refunded'""",
    """INSERT INTO orders_dispute (order_id, stripe_dispute_id, amount_cents, currency, status,
         reason, evidence_due_by, funds_withdrawn, funds_reinstated, created_at, updated_at,
         status_created, balance_transactions_seen, fee_cents, fee_currency)
       SELECT id, 'dp_test_' || id, subtotal_cents, 'usd', 'needs_response', 'fraudulent',
         created_at + interval '7 days', false, false, created_at, created_at, 0, 0, 0, ''
       FROM orders_order WHERE status = 'disputed'""",
    "VACUUM ANALYZE",  # the tab counts are index-only scans: they need the visibility map
]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--reuse", action="store_true", help="time the orders of the last run (no new database)"
    )
    args = parser.parse_args()
    if args.orders < 30_000 or args.repeat < 3:
        parser.error("need --orders >= 30000 (page 500) and --repeat >= 3")
    return args


def seed(n: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in SEED:
            cursor.execute(statement.replace("%(n)s", str(n)))


def cases(n: int) -> list[tuple[str, str, str]]:
    """(case, /mgmt URL, the admin's URL for the same search or filter and rows; "" when the
    admin has no such filter). The admin's search is its `icontains` over its search_fields."""
    from orders.models import Order

    # Page 500 of 50 rows is rows 24,951-25,000, newest first; the admin's 100-row page 250
    # holds them too. /mgmt reaches it by its keyset cursor (the id before the page).
    before = Order.objects.order_by("-pk").values_list("pk", flat=True)[499 * 50 - 1]
    email = "buyer124@example.com"  # one of its four orders
    intent = f"pi_test_{n // 2}"
    return [
        ("first page", "/mgmt/orders/", "/admin/orders/order/"),
        ("status refunded", "/mgmt/orders/?status=refunded", "/admin/orders/order/?status__exact=refunded"),
        ("email search", f"/mgmt/orders/?q={email}", f"/admin/orders/order/?q={email}"),
        ("PaymentIntent id", f"/mgmt/orders/?q={intent}", f"/admin/orders/order/?q={intent}"),
        ("page 500", f"/mgmt/orders/?after={before}_{before}", "/admin/orders/order/?p=250"),
    ]  # fmt: skip


def searches() -> list[tuple[str, str, str]]:
    """The searches and filters as staff type them (issue 22), beside the admin's icontains
    search for the same words (it searches number, email and two Stripe ids)."""
    words = [
        ("part of an email, rare", "uyer4321@"),
        ("part of an email, common", "mail.test"),
        ("part of a name", "lovelace"),
        ("a product", "product 2"),
        ("an amount, rare", "49,00"),
        ("an amount, common", "20.00"),
        ("last four digits", "0423"),
        ("no match", "zzqx"),
    ]
    filters = [
        ("filter: product", "product=product-2"),
        ("filter: currency", "currency=eur"),
        ("filter: method", "method=sepa_debit"),
        ("filter: all three", "product=product-2&currency=eur&method=sepa_debit"),
        ("name + method", "q=lovelace&method=wallet:apple_pay"),
    ]
    return [
        *[(name, f"/mgmt/orders/?{urlencode({'q': q})}", f"/admin/orders/order/?{urlencode({'q': q})}")
          for name, q in words],
        *[(name, f"/mgmt/orders/?{query}", "") for name, query in filters],
    ]  # fmt: skip


def next_page(client, url: str) -> str:
    """The second page of `url`'s rows, by the cursor its first page links to."""
    link = re.search(r'href="([^"]+)" rel="next"', client.get(url).content.decode())
    return html.unescape(link[1])


def timed(client, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this process's CPU milliseconds of each request. On a busy machine the
    wall clock includes waiting for a core; the CPU time (Django's side, without PostgreSQL's)
    hardly moves with the load."""
    client.get(url)  # warm-up: connection, templates, PostgreSQL's cache
    wall, cpu = [], []
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        response = client.get(url)
        if response.streaming:
            for _ in response.streaming_content:
                pass
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
    return wall, cpu


def p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[int(q * (len(ordered) - 1))]


def table_row(row: tuple) -> list[str]:
    name, ours50, ours90, admin50, admin90, our_cpu, their_cpu = row
    if admin50 is None:
        return [name, f"{ours50:.1f}", f"{ours90:.1f}", "", "", "", f"{our_cpu:.1f}", ""]
    times = [f"{ms:.1f}" for ms in (ours50, ours90, admin50, admin90)]
    return [name, *times, f"{admin50 / ours50:.1f}×", f"{our_cpu:.1f}", f"{their_cpu:.1f}"]


def measure(client, cases: list[tuple[str, str, str]], repeat: int) -> list[tuple]:
    rows = []
    for name, mgmt, admin in cases:
        ours, our_cpu = timed(client, mgmt, repeat)
        theirs, their_cpu = timed(client, admin, repeat) if admin else ([None], [None])
        rows.append(
            (name, p(ours, 0.5), p(ours, 0.9), p(theirs, 0.5), p(theirs, 0.9),
             p(our_cpu, 0.5), p(their_cpu, 0.5))
        )  # fmt: skip
    return rows


HEADER = ["case", "/mgmt p50", "p90", "admin p50", "p90", "admin ÷ /mgmt", "CPU /mgmt", "admin"]
WIDTHS = [26, 11, 8, 11, 8, 15, 11, 8]


def export_peak(client, url: str) -> tuple[float, int]:
    """Peak Python memory (MiB) while streaming `url` to nowhere, and the rows it had."""
    tracemalloc.start()
    rows = 0
    for chunk in client.get(url).streaming_content:
        rows += chunk.count(b"\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, rows - 1


def main() -> int:
    args = parse_args()
    harness.configure_environment(
        settings="bench.mgmt_settings",
        database_url=args.database_url,
        name="mgmt-orders",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="0",
        STAFF_2FA_REQUIRED="0",  # the second factor is the sign-in's, not the page's
    )
    harness.exit_on_sigterm()
    if not args.reuse:
        harness.recreate_database(args.database_url, MARKER_TABLE)
    import django

    django.setup()
    from django.test import Client

    from accounts.models import User

    started = time.perf_counter()
    if args.reuse:
        harness.migrate()
    else:
        harness.migrate(*harness.marker_table(MARKER_TABLE))
        print(f"writing {args.orders:,} orders with items, licenses, events ...", flush=True)
        seed(args.orders)
        User.objects.create_superuser("bench@example.com", "x")
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    client = Client()
    client.force_login(User.objects.get(email="bench@example.com"))

    print(f"load average before timing: {harness.load_average()}")
    rows = measure(client, cases(args.orders), args.repeat)
    harness.print_table(HEADER, [table_row(row) for row in rows], WIDTHS)
    found = searches()
    found.append(("part of a name, page 2", next_page(client, found[2][1]), ""))
    searched = measure(client, found, args.repeat)
    print("\nSearches and filters (issue 22):")
    harness.print_table(HEADER, [table_row(row) for row in searched], WIDTHS)
    export, _ = timed(client, "/mgmt/orders/export.csv", max(3, args.repeat // 5))
    small_peak, small_rows = export_peak(client, "/mgmt/orders/export.csv?status=failed")
    full_peak, full_rows = export_peak(client, "/mgmt/orders/export.csv")
    print(f"\nCSV export of all {full_rows:,} orders: p50 {statistics.median(export) / 1000:.1f} s")
    print(f"  peak Python memory: {small_peak:.1f} MiB for {small_rows:,} rows, "
          f"{full_peak:.1f} MiB for {full_rows:,} rows")  # fmt: skip
    print(f"load average after the run: {harness.load_average()}")
    slow = [name for name, a, _, c, *_ in rows if a >= 100 or c < 4 * a]
    slow += [name for name, a, *_ in searched if a >= 100]
    if slow:
        print("missed the target (p50 < 100 ms, and 4× faster than the admin for the list's "
              f"first cases): {', '.join(slow)}")  # fmt: skip
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
