"""Webhook throughput: POST /stripe/webhook/ against a bare and a minimal correct handler.

    .venv/bin/python -m bench.webhook_throughput [--events 2000] [--clients 16] [--rounds 5]

gunicorn (config/gunicorn.py, sync workers) on PostgreSQL serves three endpoints in one run:
`bare` verifies the signature and answers 200; `minimal` also stores the event id uniquely and
locks and updates the order row in one transaction; `full` is the shop's real webhook. Client
threads post signed `checkout.session.completed` events, one per distinct pending order; then,
against the orders each server was just told were paid, a full `charge.refunded` for half of them
and a `charge.dispute.created` for the other half. The phases are interleaved over several rounds
and each server's median rate is reported, because on a small machine the client competes with
the server for the same cores. See docs/benchmarks.md.
"""

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import harness
from testkit import signing
from testkit.stripe_objects import charge_obj, dispute_obj, make_event, refund_obj, session_obj

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_webhooks"
WEBHOOK_SECRET = "whsec_bench_webhook_throughput"
SERVERS = {"bare": "/bench/bare/", "minimal": "/bench/minimal/", "full": "/stripe/webhook/"}
EVENT_TABLE = "bench_webhook_event"  # bench/views.py writes it; its presence marks our database
CPU_PARTS = ("gunicorn", "postgres", "client")
# A paid checkout.session.completed, then, against the paid order, a full charge.refunded or a
# charge.dispute.created.
KINDS = ("checkout", "refund", "dispute")


@dataclass(frozen=True)
class Placed:
    """What the events of an order need from it, kept after its placing transaction."""

    pk: int
    number: str
    public_id: object  # uuid.UUID
    subtotal_cents: int
    currency: str
    email: str
    attempt: int
    stripe_session_id: str


@dataclass
class Job:
    order: Placed
    kind: str  # KINDS
    event_id: str
    body: bytes

    @property
    def order_pk(self) -> int:
        return self.order.pk


def event_for(kind: str, order: Placed) -> dict:
    """The event of `kind` for `order`, built as the tests build theirs (testkit.stripe_objects)."""
    if kind == "checkout":
        return make_event("checkout.session.completed", session_obj(order))
    if kind == "refund":
        # The whole amount back, with its succeeded refund listed, as Stripe sends it.
        total = order.subtotal_cents
        refund = refund_obj(order, f"re_{order.number}", total)
        refunds = {"object": "list", "data": [refund], "has_more": False}
        return make_event("charge.refunded", charge_obj(order, total, refunds=refunds))
    return make_event("charge.dispute.created", dispute_obj(order, f"dp_{order.number}"))


def make_job(kind: str, order: Placed) -> Job:
    event = event_for(kind, order)
    return Job(order, kind, event["id"], signing.body(event))


def follow_ups(paid: list[Job]) -> dict[str, list[Job]]:
    """A full refund for every other order just paid, a dispute for the rest."""
    return {"refund": [make_job("refund", j.order) for j in paid[::2]],
            "dispute": [make_job("dispute", j.order) for j in paid[1::2]]}  # fmt: skip


@dataclass
class Phase(harness.Phase):
    kind: str = "checkout"
    delivered: list[Job] = field(default_factory=list)
    # CPU seconds the gunicorn workers, the database backends and this client used meanwhile.
    cpu: dict[str, float] = field(default_factory=dict)

    def cpu_per_event(self, part: str) -> float:
        return self.cpu[part] / len(self.latencies) * 1000 if self.latencies else float("nan")


def parse_args() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=2000, help="measured payments per server (plus as many"
        " refunds and disputes together)",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median kept)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured events per server")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn workers")
    parser.add_argument("--phase-timeout", type=float, default=120, help="seconds per phase")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of one event")
    parser.add_argument(
        "--server-root", type=Path, default=harness.ROOT, help="serve the shop from this checkout"
        " (e.g. a worktree of an earlier commit with the same migrations), to compare its"
        " server with this one's on the very same events; queries are counted in-process, in"
        " this checkout's code",
    )  # fmt: skip
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help="event kinds to measure, of: " + ",".join(KINDS)
    )
    args = parser.parse_args()
    if args.events < args.rounds or args.clients < 1:
        parser.error("--events must be at least --rounds, and --clients at least 1")
    args.kinds = [k for k in KINDS if k in args.kinds.split(",")]
    if "checkout" not in args.kinds:
        parser.error("--kinds must include checkout: refunds and disputes follow payments")
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
    included) with the Checkout Session it records, each with the event that will pay it. One thread per server: the time goes in
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

    from orders.checkout import place_order, record_checkout_session

    jobs = []
    try:
        with transaction.atomic():
            for n in range(count):
                order = place_order(product=product, quantity=1, email=f"buyer{n}@example.com")
                # The session Buy Now would have created: only it may pay the order.
                record_checkout_session(order, {"id": f"cs_test_{order.number}"})
                placed = Placed(order.pk, order.number, order.public_id, order.subtotal_cents,
                                order.currency, order.email, order.attempt,
                                order.stripe_session_id)  # fmt: skip
                jobs.append(make_job("checkout", placed))
    finally:
        connection.close()  # this thread's own connection
    return jobs


def count_queries(probes: dict[str, list[Job]], kinds: list[str], *, show: bool = False):
    """SQL statements one event of each kind costs on each server (in-process, same middleware
    and view): a payment for each probe order, then a refund of the second, a dispute of the
    third. Returns {(server, kind): statements}."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client, counts = Client(), {}
    for server, paid in probes.items():
        refund, dispute = make_job("refund", paid[1].order), make_job("dispute", paid[2].order)
        for job in [*paid, refund, dispute]:
            if job.kind not in kinds:
                continue
            header = signing.signature(job.body, WEBHOOK_SECRET)
            with CaptureQueriesContext(connection) as queries:
                response = client.post(
                    SERVERS[server], job.body, "application/json", HTTP_STRIPE_SIGNATURE=header
                )
            assert response.status_code == 200, (server, response.status_code, response.content)
            if (server, job.kind) in counts:
                continue
            counts[server, job.kind] = len(queries)
            if show:
                print(f"SQL for one {server} {job.kind} event:")
                for query in queries:
                    print(f"  {query['sql'][:160]}")
        probes[server] = [*paid, refund, dispute]
    return counts


def drive(base: str, server: str, jobs: list[Job], clients: int, timeout: float) -> Phase:
    """Post every job's event, `clients` at a time, until done or `timeout` seconds passed."""
    url = base + SERVERS[server]

    def post(session: requests.Session, job: Job) -> tuple[bool, float]:
        headers = {
            "Content-Type": "application/json",
            "Stripe-Signature": signing.signature(job.body, WEBHOOK_SECRET),
        }
        started = time.perf_counter()
        try:
            ok = session.post(url, data=job.body, headers=headers, timeout=30).status_code
        except requests.RequestException:
            ok = 0
        return ok == 200, time.perf_counter() - started

    results, elapsed = harness.run_clients(jobs, clients, timeout, post)
    phase = Phase(server, elapsed, kind=jobs[0].kind if jobs else "checkout")
    for job, (ok, seconds) in results:
        if ok:
            phase.latencies.append(seconds)
            phase.delivered.append(job)
        else:
            phase.errors += 1
    return phase


def warm_up(base: str, jobs: dict[str, list[Job]], args) -> dict[str, list[Job]]:
    """Every server and kind once, unmeasured; returns what was delivered."""
    delivered = {}
    for name in SERVERS:
        warm = drive(base, name, jobs[name][: args.warmup], args.clients, 60)
        paid = warm.delivered
        for kind, follow in follow_ups(paid).items():
            if kind in args.kinds and follow:
                later = drive(base, name, follow, args.clients, 60)
                warm.errors += later.errors
                warm.delivered += later.delivered
        if warm.errors:
            raise RuntimeError(f"{name}: {warm.errors} errors while warming up")
        delivered[name] = warm.delivered
    return delivered


def run_rounds(base: str, work: dict[str, list[list[Job]]], args, master: int) -> list[Phase]:
    """Each round pays a share of every server's orders, then refunds half of those just paid
    and disputes the other half; each kind runs every server once, in an order rotated per
    round, so drift hits all of them alike."""
    phases, names = [], list(SERVERS)
    for number in range(args.rounds):
        follow, turn = {}, number % len(names)
        for kind in args.kinds:
            for server in names[turn:] + names[:turn]:
                jobs = work[server][number] if kind == "checkout" else follow[server][kind]
                phase = measure(base, server, jobs, args, master)
                phases.append(phase)
                if kind == "checkout":
                    follow[server] = follow_ups(phase.delivered)
    return phases


def measure(base: str, server: str, jobs: list[Job], args, master: int) -> Phase:
    before = cpu_snapshot(master)
    phase = drive(base, server, jobs, args.clients, args.phase_timeout)
    after = cpu_snapshot(master)
    phase.cpu = {part: harness.cpu_used(before[part], after[part]) for part in after}
    print(
        f"  {server:<8} {phase.kind:<9} {len(phase.latencies):>6} events"
        f" {phase.rate:>8.1f}/s  errors {phase.errors}",
        flush=True,
    )
    return phase


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


def summarise(phases: list[Phase], kinds: list[str]) -> dict[tuple[str, str], dict]:
    rows = {}
    for kind in kinds:
        for server in SERVERS:
            mine = [p for p in phases if p.server == server and p.kind == kind]
            rows[server, kind] = {
                **harness.summarise(mine),
                **{part: statistics.median(p.cpu_per_event(part) for p in mine) for part in CPU_PARTS},
            }  # fmt: skip
    return rows


def print_table(rows: dict[tuple[str, str], dict], queries: dict, kinds: list[str]) -> None:
    header = ("server", "kind", "events", "events/s", "p50 ms", "p99 ms", "errors", "queries",
              "events/s per round")  # fmt: skip
    table = [
        (server, kind, row["count"], f"{row['rate']:.1f}", f"{row['p50']:.1f}",
         f"{row['p99']:.1f}", row["errors"], queries[server, kind],
         harness.joined(row["rounds"], 1))
        for (server, kind), row in rows.items()
    ]  # fmt: skip
    harness.print_table(header, table, (9, 9, 8, 10, 9, 9, 8, 9))
    for kind in kinds:
        full, minimal, bare = (rows[s, kind] for s in ("full", "minimal", "bare"))
        per_round = harness.ratios(full["rounds"], minimal["rounds"])
        print(
            f"\n{kind}: full/minimal = {full['rate'] / minimal['rate']:.2f}"
            f" (median rates; target >= 0.60); per round {harness.joined(per_round, 2)},"
            f" median {statistics.median(per_round):.2f}; minimal/bare ="
            f" {minimal['rate'] / bare['rate']:.2f}"
        )
    print("\nCPU ms per event (median of rounds): " + ", ".join(CPU_PARTS) + ", server")
    for (server, kind), row in rows.items():
        cells = (server, kind, *(f"{row[part]:.2f}" for part in CPU_PARTS),
                 f"{row['gunicorn'] + row['postgres']:.2f}")  # fmt: skip
        print(harness.format_row(cells, (9, 9, 9, 9, 9, 9)))
    for kind in kinds:
        cost = {
            s: rows[s, kind]["gunicorn"] + rows[s, kind]["postgres"] for s in ("full", "minimal")
        }
        print(
            f"{kind}: server CPU per event, full/minimal = {cost['full'] / cost['minimal']:.1f}x:"
            f" where the server alone is the bottleneck, full/minimal events/s would be about"
            f" {cost['minimal'] / cost['full']:.2f}"
        )


# What each order must end as, after the last kind of event it was sent.
FINAL = {"checkout": "completed", "refund": "refunded", "dispute": "disputed"}
LICENSE = {"checkout": "active", "refund": "revoked", "dispute": "suspended"}


def check(delivered: dict[str, list[Job]], all_jobs: dict[str, list[Job]]) -> bool:
    """Every event the full handler answered 200 stored once and applied; each of its orders in
    the status its last event calls for, with one transition into it, one transition to
    completed, and its license in the matching state; the minimal handler's orders in the same
    statuses, one bench row per event; nothing undelivered touched."""
    from django.db import connection
    from django.db.models import Count, Q

    from licenses.models import License
    from orders.models import Order, OrderTransition, StripeEvent

    full = delivered["full"]
    ids = [j.event_id for j in full]
    stored = StripeEvent.objects.filter(id__in=ids)
    applied = stored.filter(outcome=StripeEvent.Outcome.APPLIED).count()
    all_events = StripeEvent.objects.count()
    last = {server: _last_kinds(jobs) for server, jobs in delivered.items()}
    wrong, moves, licenses = 0, 0, 0
    for kind in KINDS:
        pks = [pk for pk, k in last["full"].items() if k == kind]
        if not pks:
            continue
        orders = Order.objects.filter(pk__in=pks)
        wrong += orders.exclude(status=FINAL[kind]).count()
        per_order = orders.annotate(
            to_completed=Count("transitions", filter=Q(transitions__to_status="completed")),
            to_final=Count("transitions", filter=Q(transitions__to_status=FINAL[kind])),
        )
        moves += per_order.exclude(to_completed=1, to_final=1).count()
        licenses += License.objects.filter(order__in=pks).exclude(status=LICENSE[kind]).count()
        licenses += len(pks) - License.objects.filter(order__in=pks).count()
    paid = sum(1 for k in last["full"].values())
    completed = OrderTransition.objects.filter(
        order__in=list(last["full"]), to_status="completed"
    ).count()
    minimal_wrong = sum(
        Order.objects.filter(pk__in=[pk for pk, k in last["minimal"].items() if k == kind])
        .exclude(status=FINAL[kind])
        .count()
        for kind in KINDS
    )
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
    n, m = len(full), len(delivered["minimal"])
    kinds = {k: sum(j.kind == k for j in full) for k in KINDS}
    ok = (
        stored.count() == applied == all_events == n
        and wrong == moves == licenses == 0
        and completed == paid
        and minimal_wrong == 0
        and minimal_rows == m
        and stray == 0
    )
    print(
        f"\ncheck {'OK' if ok else 'FAILED'}: full: {n} events answered 200"
        f" ({', '.join(f'{v} {k}' for k, v in kinds.items())}), {stored.count()} stored,"
        f" {applied} applied, {all_events} rows in all; {paid} orders paid, {completed}"
        f" transitions to completed; {wrong} orders not in the status their last event calls for,"
        f" {moves} without exactly one move into it, {licenses} licenses missing or in the wrong"
        f" state; minimal: {minimal_wrong} orders in a wrong status, {minimal_rows}/{m} event"
        f" rows; orders never posted yet changed: {stray}"
    )
    return ok


def _last_kinds(jobs: list[Job]) -> dict[int, str]:
    """Each order's last kind of event delivered (a refund or dispute follows its payment)."""
    last = {}
    for job in jobs:
        if job.kind == "checkout":
            last.setdefault(job.order_pk, "checkout")
        else:
            last[job.order_pk] = job.kind
    return last


def main() -> int:
    args = parse_args()
    configure_environment(args.database_url)
    harness.exit_on_sigterm()
    harness.recreate_database(args.database_url, EVENT_TABLE)

    import django

    django.setup()
    from django.db import connection

    migrate()
    print(f"placing {(args.events + args.warmup + 3) * 3} pending orders ...", flush=True)
    started = time.perf_counter()
    jobs = make_jobs(dict.fromkeys(SERVERS, args.warmup + args.events))
    probes = make_jobs(dict.fromkeys(SERVERS, 3))
    queries = count_queries(probes, args.kinds, show=args.show_queries)
    print(f"  done in {time.perf_counter() - started:.0f} s; queries per event: {queries}")
    connection.close()

    # A body that is not signed: answered 400 once Django is up.
    with harness.gunicorn(
        args.workers, SERVERS["bare"], b"{}", root=args.server_root.resolve()
    ) as server:
        harness.print_serving(server.base, args.workers, args.clients)
        if args.server_root.resolve() != harness.ROOT:
            print(f"the shop served from {args.server_root.resolve()}", flush=True)
        delivered = warm_up(server.base, jobs, args)
        for name in SERVERS:
            delivered[name] += [j for j in probes[name] if j.kind in args.kinds]
        work = {s: harness.split(jobs[s][args.warmup :], args.rounds) for s in SERVERS}
        phases = run_rounds(server.base, work, args, server.process.pid)
        if any(phase.errors for phase in phases):
            harness.print_log_tail(server.log)

    print(f"load average after the run: {harness.load_average()}")
    print_table(summarise(phases, args.kinds), queries, args.kinds)
    for phase in phases:
        delivered[phase.server] += phase.delivered
    return 0 if check(delivered, jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
