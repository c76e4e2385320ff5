"""Discord delivery: a burst's visible embeds per minute against Discord's limits, and idle latency.

    .venv/bin/python -m bench.discord_delivery [--scale 10] [--events 2000]
        [--idle-samples 30] [--workers 1]

The real `manage.py deliver_notifications` worker(s), on PostgreSQL, deliver to the fake Discord
of testkit/fake_discord.py, run as a subprocess on 127.0.0.1 with Discord's limits divided in time
by `--scale`: 5 requests per 2 s per webhook, 30 messages per 60 s per channel. The channel limit
is the tighter one, so the most a sender can deliver is 30 messages of 10 embeds a minute: 300
embeds per Discord minute (`scale` times that per real minute). Only embeds a channel shows
count: Discord hides all but the first of a message's embeds that share a `url`, and the burst's
events come five per order, each linking to its order. A burst of `--events` notifications is
written to the outbox in one transaction; its sustained rate is compared with that maximum. Then
single orders are placed, one transaction each and spaced out so that no limit applies, and the
time from each commit to the fake's arrival of its message is measured. See docs/benchmarks.md.
"""

import argparse
import contextlib
import itertools
import math
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import requests

from bench import harness
from testkit.fake_discord import visible  # what a channel shows of a message's embeds

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_discord"
MARKER_TABLE = "bench_discord_marker"  # its presence marks a database this script made
# Discord's numbers, in real seconds: per webhook bucket, hidden per channel limit, batching.
BUCKET_LIMIT, BUCKET_WINDOW = 5, 2.0
CHANNEL_LIMIT, CHANNEL_WINDOW = 30, 60.0
EMBEDS_PER_MESSAGE = 10
TARGET_SHARE, TARGET_P50 = 0.90, 1.0
BURST_TITLE = re.compile(r" · burst (\d+)$")


@dataclass(frozen=True)
class Limits:
    scale: float

    @property
    def bucket_window(self) -> float:
        return BUCKET_WINDOW / self.scale

    @property
    def channel_window(self) -> float:
        return CHANNEL_WINDOW / self.scale

    @property
    def spacing(self) -> float:
        """The least time between messages that keeps both limits out of play."""
        return 1.5 * max(self.bucket_window / BUCKET_LIMIT, self.channel_window / CHANNEL_LIMIT)


@dataclass
class Message:
    at: float  # arrival at the fake, its clock (this machine's)
    titles: list[str]  # of the embeds the channel shows


@dataclass
class Burst:
    events: int
    write_seconds: float
    committed: float
    messages: list[Message] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    scopes: Counter = field(default_factory=Counter)
    violations: int = 0
    hidden: int = 0  # embeds accepted but not shown (a url already in their message)


@dataclass
class Idle:
    latencies: list[float] = field(default_factory=list)
    paced: int = 0  # samples a limit could have delayed (should be none)
    statuses: Counter = field(default_factory=Counter)
    violations: int = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10, help="divides Discord's time windows")
    parser.add_argument("--events", type=int, default=2000, help="notifications in the burst")
    parser.add_argument("--idle-samples", type=int, default=30, help="single orders when idle")
    parser.add_argument("--workers", type=int, default=1, help="deliver_notifications processes")
    parser.add_argument(
        "--poll-interval", type=float, help="DISCORD_POLL_INTERVAL (default: the setting's)"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if args.scale <= 0 or args.events < 1 or args.idle_samples < 1 or args.workers < 1:
        parser.error("--scale must be positive; --events, --idle-samples and --workers >= 1")
    return args


def configure_environment(args: argparse.Namespace, api_base: str, limits: Limits) -> None:
    harness.configure_environment(
        settings="config.settings",
        database_url=args.database_url,
        name="discord-delivery",
        STRIPE_SECRET_KEY="",
        DISCORD_API_BASE=api_base,
        DISCORD_CHANNEL_LIMIT=str(CHANNEL_LIMIT),
        DISCORD_CHANNEL_WINDOW=str(limits.channel_window),
    )
    os.environ.pop("DISCORD_POLL_INTERVAL", None)
    if args.poll_interval is not None:
        os.environ["DISCORD_POLL_INTERVAL"] = str(args.poll_interval)


# The fake Discord and the workers, as subprocesses.


def start_fake(limits: Limits, log, *options: str) -> tuple[subprocess.Popen, str]:
    """The fake with the scaled limits (and more of its command-line `options`); returns it and
    its API base (it prints it first)."""
    command = [
        sys.executable, "-m", "testkit.fake_discord", "--host", "127.0.0.1", "--port", "0",
        "--bucket-limit", str(BUCKET_LIMIT), "--bucket-window", str(limits.bucket_window),
        "--channel-limit", str(CHANNEL_LIMIT), "--channel-window", str(limits.channel_window),
        *options,
    ]  # fmt: skip
    fake = subprocess.Popen(
        command, cwd=harness.ROOT, stdout=subprocess.PIPE, stderr=log, text=True
    )
    line = fake.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/api/v10)", line)
    if not match:
        fake.kill()
        raise RuntimeError(f"the fake Discord did not start: {line!r}")
    return fake, match.group(1)


def start_workers(count: int, log) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py", "deliver_notifications"]
    return [
        subprocess.Popen(command, cwd=harness.ROOT, env=os.environ, stdout=log, stderr=log)
        for _ in range(count)
    ]


def wait_for_heartbeats(workers: list[subprocess.Popen]) -> None:
    from workers.models import Heartbeat

    deadline = time.monotonic() + 30
    while Heartbeat.objects.count() < len(workers):
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker exited while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not beat within 30 s")
        time.sleep(0.1)


class FakeLog:
    """GET /_stats of the fake: counts while waiting, every request at the end."""

    def __init__(self, api_base: str) -> None:
        self.url = api_base.split("/api/")[0] + "/_stats"
        self.session = requests.Session()

    def embeds(self) -> int:
        return self.session.get(self.url, timeout=10).json()["embeds"]

    def log(self) -> list[dict]:
        return self.session.get(self.url, params={"full": 1}, timeout=30).json()["log"]

    def wait_for_embeds(self, count: int, timeout: float, poll: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.embeds() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)
        return True


# The two phases.


def template_embeds() -> list[dict]:
    """Realistic embeds: order_embed for a few orders and events, as the receivers build them.
    The orders are placed before any destination exists, so their own notifications stay put."""
    from notifications.embeds import order_embed
    from notifications.events import Event
    from orders.checkout import place_order
    from orders.models import Product

    product = Product.objects.create(slug="bench-discord", name="Bench Pro", price_cents=4900)
    events = [
        (Event.ORDER_PENDING, []),
        (Event.CHECKOUT_STARTED, []),
        (Event.ORDER_COMPLETED, []),
        (Event.PAYMENT_FAILED, [("Reason", "Your card was declined. (card_declined)")]),
        (Event.ORDER_REFUNDED, [("Refund", "$49.00 (full)"), ("Refund reason", "requested")]),
    ]
    embeds = []
    for n in range(4):
        order = place_order(product=product, quantity=n + 1, email=f"buyer{n}@example.com")
        embeds += [(event, order_embed(event, order, extra)) for event, extra in events]
    return embeds


def create_destination():
    from notifications.models import Destination

    webhook_id = str(random.randrange(10**17, 10**18))
    return Destination.objects.create(
        name="bench", webhook_id=webhook_id, token=secrets.token_urlsafe(51)
    )


def write_burst(count: int, templates: list) -> Burst:
    """`count` notifications through the outbox in one transaction, as a flood of changes would."""
    from django.db import transaction

    from notifications.outbox import enqueue

    started = time.perf_counter()
    with transaction.atomic():
        for n in range(count):
            event, embed = templates[n % len(templates)]
            enqueue(event, {**embed, "title": f"{embed['title']} · burst {n:05d}"})
    committed = time.time()
    return Burst(count, time.perf_counter() - started, committed)


def titles(request: dict, *, shown: bool = False) -> list[str]:
    """The titles of a request's embeds; `shown`: only those the channel would show."""
    embeds = (request["body"] or {}).get("embeds", [])
    return [e.get("title", "") for e in (visible(embeds) if shown else embeds)]


def read_burst(burst: Burst, log: list[dict]) -> None:
    """The burst's requests (those carrying its embeds, 429s included), in arrival order."""
    for request in log:
        if not any(BURST_TITLE.search(t) for t in titles(request)):
            continue
        burst.statuses[str(request["status"])] += 1
        burst.scopes.update([request["scope"]] if request["status"] == 429 else [])
        burst.violations += request["violation"]
        if request["status"] == 200:
            burst.messages.append(Message(request["at"], titles(request, shown=True)))
            burst.hidden += len(titles(request)) - len(titles(request, shown=True))


def measure_idle(samples: int, limits: Limits, fake: FakeLog, poll: float) -> dict[str, float]:
    """Place single orders (one transaction each: the order_placed receiver writes the outbox
    row); returns each order's title → its commit time."""
    from django.db import transaction

    from orders.checkout import place_order
    from orders.models import Product

    product = Product.objects.get(slug="bench-discord")
    committed, rng = {}, random.Random(20261127)
    for n in range(samples):
        # Random gaps, so that commits fall at every phase of the worker's polling loop.
        time.sleep(rng.uniform(limits.spacing, 2 * limits.spacing))
        before = fake.embeds()
        with transaction.atomic():
            order = place_order(product=product, quantity=1, email=f"idle{n}@example.com")
        committed[f"Order pending: order {order.number}"] = time.time()
        if not fake.wait_for_embeds(before + 1, timeout=15, poll=0.01):
            raise RuntimeError(f"idle sample {n} did not reach the fake within 15 s")
    return committed


def read_idle(committed: dict[str, float], log: list[dict], limits: Limits) -> Idle:
    idle = Idle()
    for request in log:
        mine = [t for t in titles(request) if t in committed]
        if not mine:
            continue
        idle.statuses[str(request["status"])] += 1
        idle.violations += request["violation"]
        if request["status"] == 200:
            idle.latencies += [request["at"] - committed[t] for t in mine]
            idle.paced += any(_limited_at(committed[t], log, limits) for t in mine)
    return idle


def _limited_at(moment: float, log: list[dict], limits: Limits) -> bool:
    """Whether a sender would have had to wait at `moment`: the channel's rolling window full,
    or the webhook's bucket spent and not yet reset."""
    accepted = [r for r in log if r["status"] == 200 and r["at"] <= moment]
    channel = [r for r in accepted if r["at"] > moment - limits.channel_window]
    if len(channel) >= CHANNEL_LIMIT:
        return True
    earlier = [r for r in log if r["at"] <= moment]
    if not earlier:
        return False
    window = earlier[-1]["window"]
    spent = sum(1 for r in earlier if r["window"] == window) >= BUCKET_LIMIT
    return spent and window + limits.bucket_window > moment


def ideal_times(limits: Limits, messages: int) -> list[float]:
    """When a perfect sender (no latency, no lag) gets each message accepted from time 0, under
    the fake's rules: a bucket of fixed windows opened by a request, a rolling channel window."""
    opened, used, sent, times, now = -math.inf, 0, deque(), [], 0.0
    for _ in range(messages):
        while True:
            if now >= opened + limits.bucket_window:
                opened, used = now, 0
            while sent and sent[0] <= now - limits.channel_window:
                sent.popleft()
            if used >= BUCKET_LIMIT:
                now = opened + limits.bucket_window
            elif len(sent) >= CHANNEL_LIMIT:
                now = sent[0] + limits.channel_window + 1e-9
            else:
                break
        used += 1
        sent.append(now)
        times.append(now)
    return times


def sustained_share(burst: Burst) -> tuple[float, float]:
    """(messages per second, embeds per message) in the steady state of the burst.

    The channel limit binds: a sender at the maximum posts message i exactly one channel window
    after message i - 30. The mean of those spacings over the burst gives the sustained rate
    without the free first window that an idle channel grants."""
    times = [m.at for m in burst.messages]
    gaps = [times[i] - times[i - CHANNEL_LIMIT] for i in range(CHANNEL_LIMIT, len(times))]
    embeds = sum(len(m.titles) for m in burst.messages) / max(1, len(burst.messages))
    if not gaps:  # a burst of one window or less: no steady state to speak of
        return math.nan, embeds
    return CHANNEL_LIMIT / statistics.mean(gaps), embeds


# Checks and the table.


def check_burst(burst: Burst) -> list[str]:
    from notifications.models import Delivery, DeliveryStatus

    seqs = [int(BURST_TITLE.search(t).group(1)) for m in burst.messages for t in m.titles]
    problems = []
    if seqs != list(range(burst.events)):
        missing = burst.events - len(set(seqs))
        dupes = len(seqs) - len(set(seqs))
        disorder = sum(1 for a, b in itertools.pairwise(seqs) if b < a)
        problems.append(f"burst: {missing} missing, {dupes} duplicates, {disorder} out of order")
    if burst.violations:
        problems.append(f"burst: {burst.violations} requests sent while told to wait")
    if burst.hidden:
        problems.append(f"burst: {burst.hidden} embeds accepted but hidden by Discord")
    pending = Delivery.objects.exclude(status=DeliveryStatus.SENT).count()
    twice = Delivery.objects.filter(attempts__gt=1).count()
    if pending or twice:
        problems.append(f"database: {pending} deliveries not sent, {twice} sent more than once")
    return problems


def check_idle(idle: Idle, samples: int) -> list[str]:
    problems = []
    if len(idle.latencies) != samples:
        problems.append(f"idle: {len(idle.latencies)} of {samples} samples arrived")
    if idle.violations or set(idle.statuses) - {"200"}:
        problems.append(f"idle: answers {dict(idle.statuses)}, violations {idle.violations}")
    return problems


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def print_report(burst: Burst, idle: Idle, limits: Limits, args, poll: float) -> bool:
    """The table; True if both targets are met."""
    per_minute = 60 / limits.scale  # real seconds in a Discord minute
    best = CHANNEL_LIMIT * EMBEDS_PER_MESSAGE  # embeds per Discord minute
    rate, per_message = sustained_share(burst)
    sustained = rate * per_minute * per_message
    last = burst.messages[-1].at - burst.committed if burst.messages else math.nan
    ideal = ideal_times(limits, math.ceil(burst.events / EMBEDS_PER_MESSAGE))[-1]
    first = burst.messages[0].at - burst.committed if burst.messages else math.nan
    p50, p90 = percentile(idle.latencies, 0.5), percentile(idle.latencies, 0.9)
    share_ok, p50_ok = sustained >= TARGET_SHARE * best, p50 < TARGET_P50
    yes = {True: "yes", False: "NO"}

    print(
        f"\nDiscord delivery: scale {limits.scale:g} (bucket {BUCKET_LIMIT} per"
        f" {limits.bucket_window:g} s, channel {CHANNEL_LIMIT} per {limits.channel_window:g} s),"
        f" {args.workers} worker(s), DISCORD_POLL_INTERVAL {poll:g} s"
    )
    print(
        f"burst: {burst.events} notifications written in one transaction ({burst.write_seconds:.1f} s);"
        f" {len(burst.messages)} messages, {per_message:.2f} visible embeds per message"
        f" ({burst.hidden} hidden);"
        f" commit → first message {first:.2f} s, → last {last:.1f} s (a perfect sender: {ideal:.1f} s)"
    )
    print(
        f"  answers {dict(sorted(burst.statuses.items()))}, 429 by scope {dict(burst.scopes)},"
        f" violations {burst.violations}"
    )
    print(
        f"idle: {len(idle.latencies)} single orders, {idle.paced} of them within reach of a limit;"
        f" answers {dict(idle.statuses)}, violations {idle.violations}"
    )
    rows = [
        ("burst: sustained visible embeds per Discord minute", f"{sustained:.1f}",
         f">= {TARGET_SHARE * best:.0f}", yes[share_ok]),
        ("  as a share of the maximum (300)", f"{sustained / best:.3f}",
         f">= {TARGET_SHARE:.2f}", yes[share_ok]),
        ("  whole burst, commit to last embed, per Discord minute",
         f"{burst.events / last * per_minute:.1f}", "", ""),
        ("  perfect sender's time / measured time", f"{ideal / last:.3f}", "", ""),
        ("idle: commit → Discord request p50 (s)", f"{p50:.3f}", f"< {TARGET_P50:g}", yes[p50_ok]),
        ("  p90 / max (s)", f"{p90:.3f} / {max(idle.latencies):.3f}", "", ""),
    ]  # fmt: skip
    harness.print_table(("measure", "value", "target", "met"), rows, (56, 16, 10, 6))
    return share_ok and p50_ok


def machine() -> str:
    return f"{os.cpu_count()} cores, load average {harness.load_average()}"


def run(args, limits: Limits, log, stack: contextlib.ExitStack) -> int:
    fake_process, api_base = start_fake(limits, log)
    stack.callback(harness.stop, fake_process, grace=15)
    configure_environment(args, api_base, limits)
    harness.recreate_database(args.database_url, MARKER_TABLE)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from notifications.models import Delivery, DeliveryStatus

    harness.migrate(*harness.marker_table(MARKER_TABLE))
    templates = template_embeds()
    create_destination()
    fake = FakeLog(api_base)
    workers = start_workers(args.workers, log)
    for worker in workers:
        stack.callback(harness.stop, worker, grace=15)
    try:
        wait_for_heartbeats(workers)
        print(f"fake Discord at {api_base}; {args.workers} worker(s) running; {machine()}")
        print(f"burst of {args.events} ...", flush=True)
        burst = write_burst(args.events, templates)
        messages = math.ceil(args.events / EMBEDS_PER_MESSAGE)
        timeout = 3 * ideal_times(limits, messages)[-1] + 60
        if not fake.wait_for_embeds(args.events, timeout, poll=0.25):
            raise RuntimeError(f"the burst did not arrive within {timeout:.0f} s")
        deadline = time.monotonic() + 30
        while Delivery.objects.filter(status=DeliveryStatus.PENDING).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("deliveries still pending 30 s after the burst arrived")
            time.sleep(0.1)
        # An empty backlog and a channel window with no sends in it: nothing paces the samples.
        time.sleep(limits.channel_window + 0.5)
        print(f"idle: {args.idle_samples} single orders ...", flush=True)
        committed = measure_idle(args.idle_samples, limits, fake, poll=0.01)
    except BaseException:
        harness.print_log_tail(log, "worker and fake log", file=sys.stdout)
        raise
    requests_log = fake.log()
    read_burst(burst, requests_log)
    idle = read_idle(committed, requests_log, limits)
    problems = check_burst(burst) + check_idle(idle, args.idle_samples)
    connection.close()
    print_report(burst, idle, limits, args, settings.DISCORD_POLL_INTERVAL)
    print(f"after the run: {machine()}")
    print("check " + ("OK" if not problems else "FAILED: " + "; ".join(problems)))
    return 1 if problems else 0


def main() -> int:
    args = parse_args()
    harness.exit_on_sigterm()
    with (
        tempfile.NamedTemporaryFile("w+", prefix="bench-discord-") as log,
        contextlib.ExitStack() as stack,  # stops the workers, then the fake, whatever happens
    ):
        return run(args, Limits(args.scale), log, stack)


if __name__ == "__main__":
    sys.exit(main())
