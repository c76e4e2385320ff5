"""Webhook throughput: POST /stripe/webhook/ against a bare and a minimal correct handler.

    .venv/bin/python bench/webhook_throughput.py [--events 2000] [--clients 16] [--rounds 5]

gunicorn (config/gunicorn.py, sync workers) on PostgreSQL serves three endpoints in one run:
`bare` verifies the signature and answers 200; `minimal` also stores the event id uniquely and
locks and updates the order row in one transaction; `full` is the shop's real webhook. Client
threads post signed `checkout.session.completed` events, one per distinct pending order. The
phases are interleaved over several rounds and each server's median rate is reported, because on
a small machine the client competes with the server for the same cores. See docs/benchmarks.md.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import harness  # bench/harness.py, found as these scripts run from their folder
import requests

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_webhooks"
WEBHOOK_SECRET = "whsec_bench_webhook_throughput"
SERVERS = {"bare": "/bench/bare/", "minimal": "/bench/minimal/", "full": "/stripe/webhook/"}
EVENT_TABLE = "bench_webhook_event"  # bench/views.py writes it; its presence marks our database
CPU_PARTS = ("gunicorn", "postgres", "client")


@dataclass
class Job:
    order_pk: int
    event_id: str
    body: bytes


@dataclass
class Phase(harness.Phase):
    delivered: list[Job] = field(default_factory=list)
    # CPU seconds the gunicorn workers, the database backends and this client used meanwhile.
    cpu: dict[str, float] = field(default_factory=dict)

    def cpu_per_event(self, part: str) -> float:
        return self.cpu[part] / len(self.latencies) * 1000 if self.latencies else float("nan")


def parse_args() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="measured events per server")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median kept)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured events per server")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn workers")
    parser.add_argument("--phase-timeout", type=float, default=120, help="seconds per phase")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of one event")
    args = parser.parse_args()
    if args.events < args.rounds or args.clients < 1:
        parser.error("--events must be at least --rounds, and --clients at least 1")
    return args


def configure_environment(database_url: str) -> None:
    harness.configure_environment(
        settings="bench.settings",
        database_url=database_url,
        name="webhook-throughput",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        SECURE_SSL_REDIRECT="0",
        STRIPE_SECRET_KEY="",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )


def migrate() -> None:
    harness.migrate(
        f"CREATE TABLE {EVENT_TABLE} (id varchar(255) PRIMARY KEY,"
        " type varchar(100) NOT NULL, received_at timestamptz NOT NULL)"
    )


def make_jobs(counts: dict[str, int]) -> dict[str, list[Job]]:
    """`counts[server]` pending orders per server, placed as the shop places them (receivers
    included), each with the event that will pay it. One thread per server: the time goes in
    database round trips, which overlap."""
    from orders.models import Product

    product, _ = Product.objects.get_or_create(
        slug="bench-license", defaults={"name": "Bench license", "price_cents": 4900}
    )
    with ThreadPoolExecutor(len(counts)) as pool:
        futures = {s: pool.submit(_place_orders, product, n) for s, n in counts.items()}
    return {server: future.result() for server, future in futures.items()}


def _place_orders(product, count: int) -> list[Job]:
    from django.db import connection, transaction

    from orders.checkout import place_order

    jobs = []
    try:
        with transaction.atomic():
            for n in range(count):
                order = place_order(product=product, quantity=1, email=f"buyer{n}@example.com")
                event = checkout_completed(order)
                jobs.append(Job(order.pk, event["id"], _dumps(event)))
    finally:
        connection.close()  # this thread's own connection
    return jobs


def _dumps(event: dict) -> bytes:
    return json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON


def checkout_completed(order) -> dict:
    """A `checkout.session.completed` event shaped like the ones Stripe sends (API 2025+)."""
    from django.conf import settings

    now = int(time.time())
    session = {
        "id": f"cs_test_{uuid.uuid4().hex}{uuid.uuid4().hex[:26]}",
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": order.subtotal_cents,
        "amount_total": order.subtotal_cents,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": f"http://127.0.0.1/checkout/cancel/{order.public_id}/",
        "client_reference_id": str(order.public_id),
        "consent": None,
        "created": now - 30,
        "currency": order.currency,
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": {
            "address": {"city": None, "country": "US", "line1": None, "postal_code": "94107"},
            "email": order.email,
            "name": "Bench Buyer",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": order.email,
        "expires_at": now + 86_370,
        "invoice": None,
        "livemode": False,
        "locale": None,
        "metadata": {"order_id": str(order.public_id), "attempt": str(order.attempt)},
        "mode": "payment",
        "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "status": "complete",
        "success_url": "http://127.0.0.1/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
    }
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION,
        "created": now,
        "data": {"object": session},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
    }


def count_queries(jobs: dict[str, Job], *, show: bool = False) -> dict[str, int]:
    """SQL statements one event costs on each server (in-process, same middleware and view)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from orders.webhooks import sign_payload

    client, counts = Client(), {}
    for server, job in jobs.items():
        header = sign_payload(job.body, WEBHOOK_SECRET)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(
                SERVERS[server], job.body, "application/json", HTTP_STRIPE_SIGNATURE=header
            )
        assert response.status_code == 200, (server, response.status_code, response.content)
        counts[server] = len(queries)
        if show:
            print(f"SQL for one {server} event:")
            for query in queries:
                print(f"  {query['sql'][:160]}")
    return counts


def drive(base: str, server: str, jobs: list[Job], clients: int, timeout: float) -> Phase:
    """Post every job's event, `clients` at a time, until done or `timeout` seconds passed."""
    from orders.webhooks import sign_payload

    url = base + SERVERS[server]

    def post(session: requests.Session, job: Job) -> tuple[bool, float]:
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(job.body, WEBHOOK_SECRET),
        }
        started = time.perf_counter()
        try:
            ok = session.post(url, data=job.body, headers=headers, timeout=30).status_code
        except requests.RequestException:
            ok = 0
        return ok == 200, time.perf_counter() - started

    results, elapsed = harness.run_clients(jobs, clients, timeout, post)
    phase = Phase(server, elapsed)
    for job, (ok, seconds) in results:
        if ok:
            phase.latencies.append(seconds)
            phase.delivered.append(job)
        else:
            phase.errors += 1
    return phase


def run_rounds(base: str, work: dict[str, list[list[Job]]], args, master: int) -> list[Phase]:
    """Each round runs every server once, in a rotated order, so drift hits all of them alike."""
    phases = []
    for number, server in harness.interleave(list(SERVERS), args.rounds):
        before = cpu_snapshot(master)
        phase = drive(base, server, work[server][number], args.clients, args.phase_timeout)
        after = cpu_snapshot(master)
        phase.cpu = {part: harness.cpu_used(before[part], after[part]) for part in after}
        phases.append(phase)
        print(
            f"  round {number + 1} {server:<8} {len(phase.latencies):>6} events"
            f" {phase.rate:>8.1f}/s  errors {phase.errors}",
            flush=True,
        )
    return phases


def cpu_snapshot(master: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the gunicorn workers, the bench database's backends, and us.
    Reading CPU time rather than the clock keeps other work on the machine out of the figure."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {
        "gunicorn": {int(pid): harness.cpu_seconds(int(pid)) for pid in workers},
        "postgres": {pid: harness.cpu_seconds(pid) for pid in backends},
        "client": {0: time.process_time()},
    }


def summarise(phases: list[Phase]) -> dict[str, dict]:
    rows = {}
    for server in SERVERS:
        mine = [p for p in phases if p.server == server]
        rows[server] = {
            **harness.summarise(mine),
            **{part: statistics.median(p.cpu_per_event(part) for p in mine) for part in CPU_PARTS},
        }
    return rows


def print_table(rows: dict[str, dict], queries: dict[str, int]) -> None:
    header = ("server", "events", "events/s", "p50 ms", "p99 ms", "errors", "queries",
              "events/s per round")  # fmt: skip
    table = [
        (server, row["count"], f"{row['rate']:.1f}", f"{row['p50']:.1f}", f"{row['p99']:.1f}",
         row["errors"], queries[server], harness.joined(row["rounds"], 1))
        for server, row in rows.items()
    ]  # fmt: skip
    harness.print_table(header, table, (9, 8, 10, 9, 9, 8, 9))
    full, minimal, bare = (rows[s]["rate"] for s in ("full", "minimal", "bare"))
    per_round = harness.ratios(rows["full"]["rounds"], rows["minimal"]["rounds"])
    print(
        f"\nfull/minimal = {full / minimal:.2f} (median rates; target >= 0.60);"
        f" per round {harness.joined(per_round, 2)}, median {statistics.median(per_round):.2f}"
    )
    print(f"minimal/bare = {minimal / bare:.2f}")
    print("\nCPU ms per event (median of rounds): " + ", ".join(CPU_PARTS))
    for server, row in rows.items():
        cells = (server, *(f"{row[part]:.2f}" for part in CPU_PARTS))
        print(harness.format_row(cells, (9, 9, 9, 9)))
    cost = {s: rows[s]["gunicorn"] + rows[s]["postgres"] for s in ("full", "minimal")}
    print(
        f"server CPU per event, full/minimal = {cost['full'] / cost['minimal']:.1f}x:"
        f" where the server alone is the bottleneck, full/minimal events/s would be about"
        f" {cost['minimal'] / cost['full']:.2f}"
    )


def check(delivered: dict[str, list[Job]], all_jobs: dict[str, list[Job]]) -> bool:
    """Every delivered full-processing event stored once and its order completed exactly once;
    the minimal handler's orders completed too; nothing undelivered touched."""
    from django.db import connection
    from django.db.models import Count

    from orders.models import Order, OrderTransition, StripeEvent

    full = delivered["full"]
    ids, pks = [j.event_id for j in full], [j.order_pk for j in full]
    stored = StripeEvent.objects.filter(id__in=ids)
    per_order = stored.values("order").annotate(n=Count("id")).filter(n__gt=1).count()
    applied = stored.filter(outcome=StripeEvent.Outcome.APPLIED).count()
    completed = Order.objects.filter(pk__in=pks, status="completed").count()
    moves = OrderTransition.objects.filter(order__in=pks, to_status="completed").count()
    all_events = StripeEvent.objects.count()
    minimal_pks = [j.order_pk for j in delivered["minimal"]]
    minimal_done = Order.objects.filter(pk__in=minimal_pks, status="completed").count()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {EVENT_TABLE}")
        minimal_rows = cursor.fetchone()[0]
    delivered_pks = {j.order_pk for jobs in delivered.values() for j in jobs}
    untouched = [j.order_pk for jobs in all_jobs.values() for j in jobs]
    stray = (
        Order.objects.filter(pk__in=untouched)
        .exclude(pk__in=delivered_pks)
        .exclude(status="pending")
        .count()
    )
    n, m = len(full), len(minimal_pks)
    ok = (
        stored.count() == applied == completed == moves == all_events == n
        and per_order == 0
        and minimal_done == minimal_rows == m
        and stray == 0
    )
    print(
        f"\ncheck {'OK' if ok else 'FAILED'}: full: {completed}/{n} orders completed,"
        f" {stored.count()}/{n} events stored ({all_events} rows in all, {applied} applied,"
        f" {per_order} orders with more than one), {moves} transitions to completed;"
        f" minimal: {minimal_done}/{m} orders completed, {minimal_rows} event rows;"
        f" orders never posted yet changed: {stray}"
    )
    return ok


def main() -> int:
    args = parse_args()
    configure_environment(args.database_url)
    harness.exit_on_sigterm()
    harness.recreate_database(args.database_url, EVENT_TABLE)

    import django

    django.setup()
    from django.db import connection

    migrate()
    print(f"placing {(args.events + args.warmup) * 3 + 3} pending orders ...", flush=True)
    started = time.perf_counter()
    jobs = make_jobs(dict.fromkeys(SERVERS, args.warmup + args.events))
    probes = {server: job for server, (job,) in make_jobs(dict.fromkeys(SERVERS, 1)).items()}
    queries = count_queries(probes, show=args.show_queries)
    print(f"  done in {time.perf_counter() - started:.0f} s; queries per event: {queries}")
    connection.close()

    # A body that is not signed: answered 400 once Django is up.
    with harness.gunicorn(args.workers, SERVERS["bare"], b"{}") as server:
        harness.print_serving(server.base, args.workers, args.clients)
        delivered = {s: [probes[s]] for s in SERVERS}
        for name in SERVERS:
            warm = drive(server.base, name, jobs[name][: args.warmup], args.clients, 60)
            if warm.errors:
                raise RuntimeError(f"{name}: {warm.errors} errors while warming up")
            delivered[name] += warm.delivered
        work = {s: harness.split(jobs[s][args.warmup :], args.rounds) for s in SERVERS}
        phases = run_rounds(server.base, work, args, server.process.pid)
        if any(phase.errors for phase in phases):
            harness.print_log_tail(server.log)

    print(f"load average after the run: {harness.load_average()}")
    print_table(summarise(phases), queries)
    for phase in phases:
        delivered[phase.server] += phase.delivered
    return 0 if check(delivered, jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
