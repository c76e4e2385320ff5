"""Soak: whole order lifecycles through the real processes while things break; nothing may be lost.

    .venv/bin/python -m bench.soak [--orders 10000] [--clients 16] [--outage 10] [--seed 1]

gunicorn serves the shop on a PostgreSQL cluster of its own (bench/private_postgres.py: the
shared server is never touched); two `deliver_notifications` workers post to the fake Discord
(testkit/fake_discord.py, its windows divided by `--scale`), which fails `--fail-rate` of requests,
hangs `--hang-rate` and rate-limits by Discord's rules; `send_key_emails` writes the key emails
to files. `--clients` threads post every order's lifecycle (testkit/lifecycles.py) as signed Stripe
events, `--duplicate` of them twice and `--shuffle` of the orders' events in any order; an event
answered anything but 200 is posted again a second later, as Stripe retries. Midway one delivery
worker is killed (SIGKILL) while it holds a message, and restarted; then PostgreSQL is stopped for
`--outage` seconds and started again.

Then, from the database, the fake and the mail folder: every order in the state its in-order
lifecycle leaves (and one audit row per real change), no license key twice, every key email sent
once, every notification shown exactly once per destination (duplicates only from the killed
worker's message, counted), every worker alive, no 5xx outside the outage. Exit status 1 when a
check fails. See docs/benchmarks.md.
"""

import argparse
import contextlib
import heapq
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import discord_delivery, harness, private_postgres
from testkit import signing

MARKER_TABLE = "bench_soak_marker"
WEBHOOK_SECRET = "whsec_bench_soak"
DISCORD_TIMEOUT = 2.0  # the worker's; the fake's hangs outlast it
REDELIVER_AFTER = 1.0  # seconds before a failed delivery is posted again (Stripe: minutes)
RECOVERY = 3.0  # seconds after PostgreSQL is back within which a 5xx still counts as the outage


@dataclass
class Job:
    order: int  # pk
    event_id: str
    body: bytes
    tries: int = 0


@dataclass
class Answer:
    started: float  # time.time()
    seconds: float
    status: int  # 0: no answer


@dataclass
class Moments:
    """When the run's disruptions happened (time.time()), for the checks and the report."""

    killed: float = 0.0
    killed_mid_send: bool = False
    outage: tuple[float, float] = (0.0, 0.0)


@dataclass
class Run:
    orders: dict[int, str] = field(default_factory=dict)  # pk → lifecycle
    expected: dict[str, dict] = field(default_factory=dict)  # lifecycle → final state
    jobs: list[Job] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent Stripe senders")
    parser.add_argument("--duplicate", type=float, default=0.2, help="share of events sent twice")
    parser.add_argument("--shuffle", type=float, default=0.1, help="share of orders shuffled")
    parser.add_argument("--outage", type=float, default=10, help="seconds PostgreSQL is down")
    parser.add_argument("--scale", type=float, default=20, help="divides Discord's windows")
    parser.add_argument("--fail-rate", type=float, default=0.2, help="Discord requests failing")
    parser.add_argument("--hang-rate", type=float, default=0.02, help="Discord requests hanging")
    parser.add_argument("--destinations", type=int, default=2, help="Discord channels")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run")
    args = parser.parse_args()
    if args.orders < 10 or args.clients < 1 or args.destinations < 1 or args.outage < 0:
        parser.error("--orders at least 10, --clients and --destinations at least 1")
    return args


def configure_environment(args, database_url: str, api_base: str, mail: Path) -> None:
    limits = discord_delivery.Limits(args.scale)
    harness.configure_environment(
        settings="config.settings",
        database_url=database_url,
        name="soak",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        STRIPE_SECRET_KEY="",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        EMAIL_URL=f"filemail:///{mail}",  # django-environ reads a path after three slashes
        DISCORD_API_BASE=api_base,
        DISCORD_CHANNEL_LIMIT=str(discord_delivery.CHANNEL_LIMIT),
        DISCORD_CHANNEL_WINDOW=str(limits.channel_window),
        DISCORD_TIMEOUT=str(DISCORD_TIMEOUT),
        DISCORD_BACKOFF_BASE="0.2",
        DISCORD_BACKOFF_CAP="2",
        DISCORD_POLL_INTERVAL="0.1",
    )


# The orders and their events.


def prepare(args, rng: random.Random) -> Run:
    """Destinations, then the orders; per lifecycle, what its in-order events leave (applied
    here to one reference order, as the any-order property test does); then every order's
    events, shuffled and duplicated, interleaved across orders."""
    from django.db import transaction

    from notifications.models import Destination
    from orders.checkout import place_order, record_checkout_session
    from orders.models import LicenseKind, Product
    from orders.webhooks import handle_stripe_event
    from testkit.lifecycles import LIFECYCLES, events_for, final_state

    for n in range(args.destinations):
        Destination.objects.create(
            name=f"soak {n}", webhook_id=str(10**17 + n), token=f"soak-token-{n}"
        )
    product = Product.objects.create(
        slug="soak", name="Soak Pro", price_cents=4900, license_kind=LicenseKind.GENERATED
    )
    run, names = Run(), list(LIFECYCLES)
    for name in names:
        reference = place_order(product=product, quantity=1, email="reference@example.com")
        record_checkout_session(reference, {"id": f"cs_test_{reference.number}"})
        for event in events_for(reference, name):
            handle_stripe_event(event)
        run.expected[name] = final_state(reference)
    keyed = []
    for start in range(0, args.orders, 500):
        with transaction.atomic():
            for n in range(start, min(start + 500, args.orders)):
                order = place_order(product=product, quantity=1, email=f"soak{n}@example.com")
                # The session Buy Now would have created: only it may pay the order.
                record_checkout_session(order, {"id": f"cs_test_{order.number}"})
                run.orders[order.pk] = name = names[n % len(names)]
                keyed += _keyed_jobs(order, events_for(order, name), args, rng)
    run.jobs = [job for _, job in sorted(keyed, key=lambda pair: pair[0])]
    return run


def _keyed_jobs(order, events: list[dict], args, rng: random.Random) -> list[tuple]:
    """The order's events with sort keys: in order, close together (so concurrent clients race
    on one order), unless the order is shuffled; a duplicate follows its original a little
    later."""
    if rng.random() < args.shuffle:
        rng.shuffle(events)
    start, keyed = rng.random(), []
    for n, event in enumerate(events):
        key = start + n * 1e-4
        job = Job(order.pk, event["id"], signing.body(event))
        keyed.append((key, job))
        if rng.random() < args.duplicate:
            keyed.append((key + rng.uniform(0, 0.05), Job(job.order, job.event_id, job.body)))
    return keyed


# Stripe's side: clients that post, and post again what failed.


class Sender:
    """`clients` threads post the jobs; a job answered anything but 200 waits REDELIVER_AFTER
    seconds and goes again. `delivered` counts the 200s, for the disruptions to time themselves."""

    def __init__(self, url: str, jobs: list[Job], clients: int) -> None:
        self.url, self.clients = url, clients
        self.queue, self.later = deque(jobs), []  # later: a heap of (not before, n, job)
        self.lock, self.in_flight, self.delivered = threading.Lock(), 0, 0
        self.answers: list[Answer] = []
        self.total = len(jobs)

    def _next(self) -> Job | bool | None:
        """A job; True to come back shortly (retries not due, or answers still to come); None
        when everything is delivered."""
        with self.lock:
            if self.later and self.later[0][0] <= time.monotonic():
                job = heapq.heappop(self.later)[2]
            elif self.queue:
                job = self.queue.popleft()
            else:
                return True if self.later or self.in_flight else None
            self.in_flight += 1
            return job

    def _client(self) -> None:
        session, mine = requests.Session(), []
        while (job := self._next()) is not None:
            if job is True:
                time.sleep(0.05)
                continue
            headers = {
                "Content-Type": "application/json",
                "Stripe-Signature": signing.signature(job.body, WEBHOOK_SECRET),
            }
            started, clock = time.time(), time.perf_counter()
            try:
                status = session.post(self.url, data=job.body, headers=headers, timeout=60)
                status = status.status_code
            except requests.RequestException:
                status = 0
            mine.append(Answer(started, time.perf_counter() - clock, status))
            with self.lock:
                self.in_flight -= 1
                if status == 200:
                    self.delivered += 1
                else:
                    job.tries += 1
                    retry = (time.monotonic() + REDELIVER_AFTER, id(job), job)
                    heapq.heappush(self.later, retry)
        with self.lock:
            self.answers += mine

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads


# The workers and the disruptions.


def start_worker(command: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", command], cwd=harness.ROOT, stdout=log, stderr=log
    )


def kill_mid_send(workers: list[subprocess.Popen], log, moments: Moments) -> None:
    """SIGKILL the first delivery worker once it holds a destination (between its claim and its
    record: sending, or about to), or after 5 s whatever it does; start another."""
    from notifications.models import Destination

    victim = workers[0]
    name = f"{socket.gethostname()}:{victim.pid}"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if Destination.objects.filter(lease_owner=name).exists():
            moments.killed_mid_send = True
            break
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    moments.killed = time.time()
    victim.wait()
    print(
        f"  killed delivery worker {victim.pid} (holding a message: {moments.killed_mid_send})",
        flush=True,
    )
    time.sleep(1)
    workers[0] = start_worker("deliver_notifications", log)


def database_outage(cluster: private_postgres.Cluster, seconds: float, moments: Moments) -> None:
    from django.db import connection

    connection.close()
    began = time.time()
    cluster.stop()
    print(f"  PostgreSQL stopped for {seconds:g} s", flush=True)
    time.sleep(seconds)
    cluster.start()
    moments.outage = (began, time.time())
    print("  PostgreSQL started again", flush=True)


def drive(args, sender: Sender, cluster, workers, log) -> tuple[Moments, float]:
    """Post everything; at 40 % delivered the kill, at 60 % the outage. Returns the moments and
    the seconds the posting took."""
    moments, started = Moments(), time.perf_counter()
    threads = sender.start()
    deadline = time.monotonic() + args.timeout
    plan = [(0.4, lambda: kill_mid_send(workers, log, moments))]
    if args.outage:
        plan.append((0.6, lambda: database_outage(cluster, args.outage, moments)))
    while any(t.is_alive() for t in threads):
        if time.monotonic() > deadline:
            raise RuntimeError(f"events still undelivered after {args.timeout:g} s")
        if plan and sender.delivered >= plan[0][0] * sender.total:
            plan.pop(0)[1]()
        time.sleep(0.05)
    for _, disruption in plan:  # a small run may deliver everything before the last one
        disruption()
    return moments, time.perf_counter() - started


def wait_for_workers(deadline: float) -> None:
    """Until no delivery and no key email is left pending (the killed worker's lease runs out
    first)."""
    from licenses.models import KeyEmail, KeyEmailStatus
    from notifications.models import Delivery, DeliveryStatus
    from workers.command import when_database_answers

    def pending() -> int:
        deliveries = Delivery.objects.filter(status=DeliveryStatus.PENDING).count()
        return deliveries + KeyEmail.objects.filter(status=KeyEmailStatus.PENDING).count()

    while left := when_database_answers(pending):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} deliveries and key emails still pending")
        time.sleep(0.5)


# The checks: each returns what it found wrong.


def check_orders(run: Run) -> list[str]:
    """Each order as its lifecycle's in-order events leave it, and its audit rows chained."""
    from orders.models import Order
    from testkit.lifecycles import assert_one_row_per_real_change, final_state

    wrong, trails = Counter(), 0
    for order in Order.objects.filter(pk__in=list(run.orders)).iterator():
        lifecycle = run.orders[order.pk]
        if final_state(order) != run.expected[lifecycle]:
            wrong[lifecycle] += 1
        try:
            assert_one_row_per_real_change(order)
        except AssertionError:
            trails += 1
    problems = [f"orders: {n} not as expected after {name!r}" for name, n in wrong.items()]
    return problems + ([f"orders: {trails} audit trails with a non-move"] if trails else [])


def check_keys(mail: Path) -> list[str]:
    """No license key twice; every key email sent, and written exactly as often as recorded (the
    keys emails by order, the buyer's other emails, refunds and disputes, by their subject)."""
    from django.db.models import Count

    from licenses.models import KeyEmail, KeyEmailKind, KeyEmailStatus, License

    problems = []
    twice = License.objects.exclude(key="").values("key").annotate(n=Count("id")).filter(n__gt=1)
    if twice.exists():
        problems.append(f"licenses: {twice.count()} keys held by several licenses")
    unsent = KeyEmail.objects.exclude(status=KeyEmailStatus.SENT).count()
    if unsent:
        problems.append(f"key emails: {unsent} not sent")
    sent = KeyEmail.objects.filter(status=KeyEmailStatus.SENT)
    recorded = Counter(sent.filter(kind=KeyEmailKind.KEYS).values_list("order__number", flat=True))
    subjects = [
        s for f in mail.iterdir() for s in re.findall(r"^Subject: (.+)$", f.read_text(), re.M)
    ]
    keys = re.compile(r"^Your (?:license keys|license renewed|receipt) for order (\S+)$")
    written = Counter(m.group(1) for s in subjects if (m := keys.match(s)))
    notices = sent.exclude(kind__in=[KeyEmailKind.KEYS, KeyEmailKind.EXPIRY])
    told = Counter(notices.values_list("subject", flat=True))
    for name, wrote, kept in (
        ("key emails", written, recorded),
        ("other emails", Counter(s for s in subjects if not keys.match(s)), told),
    ):
        if wrote != kept:
            extra, missing = wrote - kept, kept - wrote
            problems.append(
                f"{name}: {sum(extra.values())} written more often than recorded,"
                f" {sum(missing.values())} recorded but not written"
            )
    return problems


def shown_embeds(log: list[dict]) -> dict[tuple, list[float]]:
    """(webhook id, title, timestamp) of each embed the channels show → when each copy arrived."""
    from testkit.fake_discord import visible

    shown: dict[tuple, list[float]] = {}
    for request in log:
        if request["status"] == 200:
            for embed in visible(request["body"]["embeds"]):
                key = (request["webhook_id"], embed.get("title"), embed.get("timestamp"))
                shown.setdefault(key, []).append(request["at"])
    return shown


def check_notifications(log: list[dict], moments: Moments) -> tuple[list[str], int]:
    """Every delivery shown exactly once; a second copy only of a message the killed worker held
    (posted just before it died). Returns the problems and those duplicates."""
    from notifications.models import Delivery, DeliveryStatus

    expected, problems = Counter(), []
    rows = Delivery.objects.values_list("destination__webhook_id", "notification__embed", "status")
    for webhook_id, embed, status in rows.iterator():
        expected[(webhook_id, embed.get("title"), embed.get("timestamp"))] += 1
        if status != DeliveryStatus.SENT:
            problems.append(f"delivery to {webhook_id} of {embed.get('title')!r}: {status}")
    shown = shown_embeds(log)
    missing = [key for key in expected if key not in shown]
    unexpected = [key for key in shown if key not in expected]
    doubles = [times for key, times in shown.items() if len(times) > expected.get(key, 1)]
    window = (moments.killed - DISCORD_TIMEOUT - 1, moments.killed)
    killed = [t for t in doubles if moments.killed_mid_send and window[0] <= t[0] <= window[1]]
    if missing or unexpected or len(doubles) > len(killed):
        problems.append(
            f"notifications: {len(missing)} never shown, {len(unexpected)} not in the outbox,"
            f" {len(doubles) - len(killed)} shown twice without the kill to explain it"
        )
    return problems[:10], len(killed)


def check_answers(answers: list[Answer], moments: Moments) -> list[str]:
    """200 for everything, except 5xx (or no answer) while PostgreSQL was away."""
    began, ended = moments.outage
    outside = Counter()
    for a in answers:
        during = a.started <= ended + RECOVERY and a.started + a.seconds >= began
        if a.status != 200 and not (during and (a.status >= 500 or a.status == 0)):
            outside[a.status] += 1
    return [f"webhook: answers outside the outage {dict(outside)}"] if outside else []


def check_workers(workers: list[subprocess.Popen], stats: dict) -> list[str]:
    problems = [f"worker {w.pid} exited ({w.returncode})" for w in workers if w.poll() is not None]
    if stats["violations"] or stats["hidden_embeds"]:
        problems.append(
            f"discord: {stats['violations']} requests while told to wait,"
            f" {stats['hidden_embeds']} embeds hidden"
        )
    return problems


# The report.


def counts() -> str:
    """What the checks went through."""
    from licenses.models import KeyEmail, License
    from notifications.models import Delivery
    from orders.models import Order, StripeEvent

    return (
        f"{Order.objects.count()} orders, {StripeEvent.objects.count()} distinct events,"
        f" {License.objects.exclude(key='').count()} license keys,"
        f" {KeyEmail.objects.count()} key emails, {Delivery.objects.count()} Discord deliveries"
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def report(args, sender: Sender, post_seconds: float, drain_seconds: float, log, stats, moments,
           duplicates: int) -> None:  # fmt: skip
    ok = [a.seconds * 1000 for a in sender.answers if a.status == 200]
    during = Counter(a.status for a in sender.answers if a.status != 200)
    accepted = [r["at"] for r in log if r["status"] == 200]
    embeds = sum(len(times) for times in shown_embeds(log).values())
    minutes = (max(accepted) - min(accepted)) / 60 if len(accepted) > 1 else float("nan")
    print(
        f"\nsoak: {args.orders} orders, {sender.total} events posted ({args.duplicate:.0%}"
        f" duplicated, {args.shuffle:.0%} of orders shuffled) by {args.clients} clients to"
        f" gunicorn ({args.workers} workers); Discord scale {args.scale:g}, {args.destinations}"
        f" destination(s), faults {stats['faults']}; PostgreSQL down {args.outage:g} s"
    )
    rows = [
        ("webhook events per second (200s / posting time)", f"{len(ok) / post_seconds:.1f}"),
        ("webhook latency p50 / p99 (ms)", f"{statistics.median(ok):.0f} / {percentile(ok, 0.99):.0f}"),
        ("answers other than 200 (all in the outage)", str(dict(during))),
        ("events redelivered", str(sum(1 for a in sender.answers if a.status != 200))),
        ("visible embeds per real minute", f"{embeds / minutes:.0f}"),
        ("Discord requests / accepted messages", f"{stats['requests']} / {stats['messages']}"),
        ("duplicates from the killed worker", str(duplicates)),
        ("posting / draining after it (s)", f"{post_seconds:.0f} / {drain_seconds:.0f}"),
    ]  # fmt: skip
    harness.print_table(("measure", "value"), rows, (52, 24))
    print(f"checked: {counts()}")
    print(f"killed a delivery worker while it held a message: {moments.killed_mid_send}")


def main() -> int:
    args = parse_args()
    harness.exit_on_sigterm()
    rng = random.Random(args.seed)
    with (
        tempfile.NamedTemporaryFile("w+", prefix="bench-soak-") as log,
        contextlib.ExitStack() as stack,  # stops everything, the cluster last, whatever happens
    ):
        try:
            return run(args, rng, log, stack)
        except BaseException:
            harness.print_log_tail(log, "worker and fake log", file=sys.stdout)
            raise


def run(args, rng: random.Random, log, stack: contextlib.ExitStack) -> int:
    deadline = time.monotonic() + args.timeout
    cluster = private_postgres.Cluster()
    stack.callback(cluster.destroy)
    cluster.create()
    mail = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-mail-")))
    options = ["--fail-rate", str(args.fail_rate), "--hang-rate", str(args.hang_rate)]
    options += ["--seed", str(args.seed), "--hang-seconds", str(DISCORD_TIMEOUT + 1)]
    limits = discord_delivery.Limits(args.scale)
    fake, api_base = discord_delivery.start_fake(limits, log, *options)
    stack.callback(harness.stop, fake, grace=5)
    configure_environment(args, cluster.url, api_base, mail)
    harness.recreate_database(cluster.url, MARKER_TABLE)

    import django

    django.setup()
    from django.db import connection

    harness.migrate(*harness.marker_table(MARKER_TABLE))
    started = time.perf_counter()
    print(f"PostgreSQL of our own on port {cluster.port}; preparing {args.orders} orders ...")
    prepared = prepare(args, rng)
    print(f"{len(prepared.jobs)} events in {time.perf_counter() - started:.0f} s", flush=True)
    workers = [start_worker("deliver_notifications", log) for _ in range(2)]
    workers.append(start_worker("send_key_emails", log))
    stack.callback(lambda: [harness.stop(w, grace=10) for w in workers])
    discord_delivery.wait_for_heartbeats(workers)
    server = stack.enter_context(harness.gunicorn(args.workers, "/stripe/webhook/", b"{}"))
    harness.print_serving(server.base, args.workers, args.clients)
    sender = Sender(server.base + "/stripe/webhook/", prepared.jobs, args.clients)
    moments, post_seconds = drive(args, sender, cluster, workers, log)
    print(f"all events delivered in {post_seconds:.0f} s; waiting for the workers ...", flush=True)
    drain_started = time.perf_counter()
    wait_for_workers(deadline)
    drain_seconds = time.perf_counter() - drain_started
    fake_log = discord_delivery.FakeLog(api_base)
    requests_log, stats = fake_log.log(), fake_log.session.get(fake_log.url, timeout=30).json()
    problems = check_workers(workers, stats) + check_answers(sender.answers, moments)
    problems += check_orders(prepared) + check_keys(mail)
    notification_problems, duplicates = check_notifications(requests_log, moments)
    problems += notification_problems
    connection.close()
    report(args, sender, post_seconds, drain_seconds, requests_log, stats, moments, duplicates)
    print(f"whole run {time.perf_counter() - started:.0f} s; load average {harness.load_average()}")
    print("check " + ("OK" if not problems else "FAILED:\n  " + "\n  ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
