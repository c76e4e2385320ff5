"""License API throughput: POST /api/licenses/validate (without and with a device fingerprint)
and POST /api/licenses/activate against a bare view that only parses the JSON.

    .venv/bin/python -m bench.validate_throughput [--licenses 100000] [--requests 6000]
        [--clients 16] [--rounds 6] [--workers 5] [--profile 2000]

gunicorn (config/gunicorn.py, sync workers) on PostgreSQL, with `--licenses` real keys in the
table (generate_key + hash_key, statuses active/suspended/revoked, a limit of 3 activations,
a third of the active ones activated on one device), serves every endpoint in one run. Client
threads post a mix of valid, unknown and wrong-product keys (validate), of activated, other and
unknown devices (validate with a fingerprint), and new devices on distinct licenses (activate,
each a 201); the phases are
interleaved over several rounds and each server's median rate is reported, because on a small
machine the client competes with the server for the same cores. The CPU time the gunicorn
workers and their PostgreSQL backends spend per request is reported too: unlike the rates it
hardly moves when something else loads the machine. The measured server runs with the rate
limits raised out of the way; a last short phase against a second gunicorn with the default
limits shows the 429s. `--profile N` adds an in-process CPU-time cProfile of N requests per
server. See docs/benchmarks.md.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench import harness

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_validate"
SERVERS = {
    "bare": "/bench/validate-bare",
    "validate": "/api/licenses/validate",
    "validate_fp": "/api/licenses/validate",
    "activate": "/api/licenses/activate",
}
# The targets: each server's rate as a share of bare's.
TARGETS = {"validate": 0.5, "validate_fp": 0.8, "activate": 0.5}
MARKER_TABLE = "bench_validate_marker"  # its presence marks a database this script made
RAISED_RATE = "1000000000"
RATE_SETTINGS = ("LICENSE_VALIDATE_RATE", "LICENSE_VALIDATE_KEY_RATE")
# Shares of the requests: keys that exist for the product asked, that exist for another
# product, and that were never issued.
MIX = {"known": 0.6, "wrong_product": 0.2, "unknown": 0.2}
STATUS_SHARES = {"active": 0.8, "suspended": 0.1, "revoked": 0.1}
PRODUCTS = {"bench-editor": "ED", "bench-compiler": "CC", "bench-profiler": "PF"}
ORDERS = 20
MAX_ACTIVATIONS = 3
ACTIVATED_SHARE = 1 / 3  # of the active licenses: one device activated
# Of validate-with-fingerprint requests: an activated device, another device, an unknown key.
FINGERPRINT_MIX = {"activated": 0.6, "other_device": 0.2, "unknown": 0.2}
JSON_HEADERS = {"Content-Type": "application/json"}
COPY_LICENSES = (
    "COPY licenses_license (id, public_id, order_id, product_id, status, reason, dispute_id, key,"
    " key_hash, max_activations, expires_at, created_at, activated_at, suspended_at, revoked_at)"
    " FROM STDIN"
)
COPY_ACTIVATIONS = (
    "COPY licenses_activation (license_id, public_id, fingerprint_hash, label, created_at,"
    " last_seen_at, ended) FROM STDIN"
)


@dataclass(frozen=True)
class Issued:
    key: str
    product: str
    status: str
    fingerprint: str  # the device it is activated on, or ""


@dataclass(frozen=True)
class Probe:
    body: bytes
    expected: str  # the `code` a correct answer carries


@dataclass
class Phase(harness.Phase):
    codes: Counter = field(default_factory=Counter)
    server_cpu: float = 0.0  # seconds: gunicorn workers plus their PostgreSQL backends
    database_cpu: float = 0.0  # seconds: the PostgreSQL backends alone
    client_cpu: float = 0.0  # seconds: this process, i.e. the client threads


def parse_args() -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--licenses", type=int, default=100_000, help="licenses in the table")
    parser.add_argument("--requests", type=int, default=6000, help="measured requests per server")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (median kept)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests per server")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn workers")
    parser.add_argument("--phase-timeout", type=float, default=30, help="seconds per phase")
    parser.add_argument("--limited", type=int, default=600, help="requests at the default limits")
    parser.add_argument("--profile", type=int, default=0, help="cProfile N in-process requests")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    if args.requests < args.rounds or args.clients < 1 or args.licenses < 100:
        parser.error("need --requests >= --rounds, --clients >= 1 and --licenses >= 100")
    return args


def configure_environment(database_url: str) -> None:
    harness.configure_environment(
        settings="bench.validate_settings",
        database_url=database_url,
        name="validate-throughput",
        LICENSE_HASH_KEY="bench-validate-license-hash-key",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        SECURE_SSL_REDIRECT="0",
        **dict.fromkeys(RATE_SETTINGS, RAISED_RATE),
    )


def seed(count: int, rng: random.Random) -> list[Issued]:
    """`count` licenses with real keys over a few completed orders, written with one COPY."""
    from django.db import connection, transaction
    from django.utils import timezone

    from licenses.keys import generate_key, hash_fingerprint, hash_key
    from orders.models import Order, Product, Status

    products = Product.objects.bulk_create(
        Product(slug=slug, name=slug, price_cents=4900, license_prefix=prefix)
        for slug, prefix in PRODUCTS.items()
    )
    orders = Order.objects.bulk_create(
        Order(email=f"buyer{n}@example.com", currency="usd", subtotal_cents=4900 * count // ORDERS)
        for n in range(ORDERS)
    )
    Order.objects.update(status=Status.COMPLETED)  # seed data: no transitions, no signals
    now, issued, devices = timezone.now(), [], []
    expires = now + timedelta(days=365)
    statuses, weights = list(STATUS_SHARES), list(STATUS_SHARES.values())
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(COPY_LICENSES) as copy,
    ):
        for n in range(1, count + 1):
            product = products[n % len(products)]
            status = rng.choices(statuses, weights)[0]
            key = generate_key(product.license_prefix)
            reason = {"active": "", "suspended": "staff", "revoked": "refund"}[status]
            fingerprint = ""
            if status == "active" and rng.random() < ACTIVATED_SHARE:
                fingerprint = f"bench-device-{n}"
                devices.append((n, fingerprint))
            copy.write_row(
                (
                    n, uuid.uuid4(), orders[n % ORDERS].pk, product.pk, status, reason, "", key,
                    hash_key(key), MAX_ACTIVATIONS, expires if n % 2 else None, now, now,
                    now if status == "suspended" else None,
                    now if status == "revoked" else None,
                )
            )  # fmt: skip
            issued.append(Issued(key, product.slug, status, fingerprint))
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(COPY_ACTIVATIONS) as copy,
    ):
        for license_id, fingerprint in devices:
            row = (license_id, uuid.uuid4(), hash_fingerprint(fingerprint), "bench", now, now, "")
            copy.write_row(row)
    with connection.cursor() as cursor:
        # The rows were written with their ids: the sequence moves past them.
        cursor.execute("SELECT setval('licenses_license_id_seq', %s)", [count])
        cursor.execute("ANALYZE licenses_license")
        cursor.execute("ANALYZE licenses_activation")
    return issued


def make_probes(issued: list[Issued], count: int, rng: random.Random) -> dict[str, list[Probe]]:
    """`count` request bodies per server, each with the answer it owes: validate's also go to
    bare; activate's each name a license no other probe activates."""
    from licenses.keys import generate_key

    kinds, weights, probes = list(MIX), list(MIX.values()), []
    for _ in range(count):
        kind, picked = rng.choices(kinds, weights)[0], rng.choice(issued)
        key, product, expected = picked.key, picked.product, CODES[picked.status]
        if kind == "wrong_product":
            product = rng.choice([slug for slug in PRODUCTS if slug != picked.product])
            expected = "PRODUCT_MISMATCH"
        elif kind == "unknown":
            key, expected = generate_key(PRODUCTS[product]), "NOT_FOUND"
        body = json.dumps({"key": key, "product": product}).encode()
        probes.append(Probe(body, expected))
    return {
        "bare": [Probe(p.body, "NOT_CHECKED") for p in probes],
        "validate": probes,
        "validate_fp": fingerprint_probes(issued, count, rng),
        "activate": activate_probes(issued, count, rng),
    }


CODES = {"active": "VALID", "suspended": "SUSPENDED", "revoked": "REVOKED"}


def fingerprint_probes(issued: list[Issued], count: int, rng: random.Random) -> list[Probe]:
    from licenses.keys import generate_key

    activated = [i for i in issued if i.fingerprint]
    kinds, weights, probes = list(FINGERPRINT_MIX), list(FINGERPRINT_MIX.values()), []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        picked = rng.choice(activated if kind == "activated" else issued)
        key, fingerprint, expected = picked.key, picked.fingerprint, "VALID"
        if kind == "other_device":
            fingerprint = f"bench-other-{n}"
            expected = "NOT_ACTIVATED" if picked.status == "active" else CODES[picked.status]
        elif kind == "unknown":
            key, expected = generate_key(PRODUCTS[picked.product]), "NOT_FOUND"
            fingerprint = f"bench-other-{n}"
        body = {"key": key, "product": picked.product, "fingerprint": fingerprint}
        probes.append(Probe(json.dumps(body).encode(), expected))
    return probes


def activate_probes(issued: list[Issued], count: int, rng: random.Random) -> list[Probe]:
    """A new device on each of `count` distinct active licenses: every answer a 201."""
    free = [i for i in issued if i.status == "active" and not i.fingerprint]
    picked = rng.sample(free, count)
    return [
        Probe(
            json.dumps(
                {"key": i.key, "product": i.product, "fingerprint": f"bench-new-{n}", "label": "pc"}
            ).encode(),
            "ACTIVATED",
        )
        for n, i in enumerate(picked)
    ]


def count_queries(url: str, probe: Probe) -> tuple[int, int]:
    """SQL statements and connection health checks one request costs, in-process.

    The test client skips `close_old_connections`, which is what re-arms the health check of a
    persistent connection at each request under gunicorn; it is called here by hand.
    """
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client, checks, usable = Client(), [], connection.is_usable

    def counted() -> bool:
        checks.append(1)
        return usable()

    connection.is_usable = counted
    try:
        for _ in range(2):  # the second request is the steady state: connection already open
            close_old_connections()
            checks.clear()
            with CaptureQueriesContext(connection) as queries:
                response = client.post(url, probe.body, "application/json")
            assert response.json()["code"] == probe.expected, response.content
    finally:
        del connection.is_usable
    return len(queries), len(checks)


def profile(probes: dict[str, list[Probe]], count: int) -> None:
    """cProfile the CPU time of `count` in-process requests per server (no HTTP, no waits)."""
    import cProfile
    import pstats

    from django.db import close_old_connections
    from django.test import Client

    client = Client()
    for server, url in SERVERS.items():
        work = probes[server][:count]
        profiler, started = cProfile.Profile(time.process_time), time.process_time()
        profiler.enable()
        for probe in work:
            close_old_connections()  # as the WSGI handler does at each request
            client.post(url, probe.body, "application/json")
        profiler.disable()
        elapsed = time.process_time() - started
        print(
            f"\nin-process {server}: {elapsed / len(work) * 1e6:.0f} µs CPU per request (profiled)"
        )
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(22)
        stats.sort_stats("tottime").print_stats(12)


def drive(url: str, server: str, probes: list[Probe], clients: int, timeout: float) -> Phase:
    """Post every probe, `clients` at a time, until done or `timeout` seconds passed.

    A 200 with the expected code counts (and is timed); anything else is an error, listed in
    the code histogram under its status.
    """
    results, elapsed = harness.run_clients(
        probes, clients, timeout, lambda session, probe: ask(session, url, probe)
    )
    phase = Phase(server, elapsed)
    for probe, (code, seconds) in results:
        if code == probe.expected:
            phase.latencies.append(seconds)
        elif code != "no answer" and not code.isdigit():
            code = f"wrong {code}"  # a 200 whose answer is not the one `validate` owes
        phase.codes[code] += 1
    phase.errors = phase.codes.total() - len(phase.latencies)
    return phase


def ask(session: requests.Session, url: str, probe: Probe) -> tuple[str, float]:
    """The `code` of the answer (its status if not a 200), and the seconds it took."""
    started = time.perf_counter()
    try:
        response = session.post(url, data=probe.body, headers=JSON_HEADERS, timeout=30)
        status = response.status_code
        code = response.json().get("code") if status in (200, 201) else str(status)
    except (requests.RequestException, ValueError):
        code = "no answer"
    return code, time.perf_counter() - started


def cpu_seconds(master: int, database: str) -> dict[str, dict[int, float]]:
    """CPU time so far of each gunicorn worker and of each PostgreSQL backend serving
    `database`, by pid."""
    found = {"workers": {}, "backends": {}}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        if (stat := harness.proc_stat(int(proc.name))) is None:
            continue
        if cmdline.startswith("postgres: ") and f" {database} " in cmdline:
            found["backends"][int(proc.name)] = stat.cpu
        elif stat.parent == master:
            found["workers"][int(proc.name)] = stat.cpu
    return found


def metered(url: str, server: str, probes: list[Probe], args, master: int) -> Phase:
    """drive(), plus the CPU the server side and the client spent on the phase."""
    database = urlsplit(args.database_url).path.lstrip("/")
    before, client = cpu_seconds(master, database), time.process_time()
    phase = drive(url, server, probes, args.clients, args.phase_timeout)
    phase.client_cpu = time.process_time() - client
    after = cpu_seconds(master, database)
    phase.database_cpu = harness.cpu_used(before["backends"], after["backends"])
    phase.server_cpu = harness.cpu_used(before["workers"], after["workers"]) + phase.database_cpu
    return phase


def run_rounds(base: str, work: dict[str, list[list[Probe]]], args, master: int) -> list[Phase]:
    """Each round runs every server once, in a rotated order, so drift hits all of them alike."""
    phases = []
    for number, server in harness.interleave(list(SERVERS), args.rounds):
        url = base + SERVERS[server]
        phase = metered(url, server, work[server][number], args, master)
        phases.append(phase)
        print(
            f"  round {number + 1} {server:<9}{len(phase.latencies):>6} requests"
            f" {phase.rate:>8.1f}/s  errors {phase.errors}"
            f"  server CPU {phase.server_cpu / len(phase.latencies) * 1000:.2f} ms/request",
            flush=True,
        )
    return phases


def summarise(phases: list[Phase]) -> dict[str, dict]:
    rows = {}
    for server in SERVERS:
        mine = [p for p in phases if p.server == server]
        row = harness.summarise(mine)
        per_request = 1000 / max(1, row["count"])  # ms per request from seconds in all
        rows[server] = {
            **row,
            "codes": sum((p.codes for p in mine), Counter()),
            "server_cpu": sum(p.server_cpu for p in mine) * per_request,
            "database_cpu": sum(p.database_cpu for p in mine) * per_request,
            "client_cpu": sum(p.client_cpu for p in mine) * per_request,
        }
    return rows


def histogram(codes: Counter) -> str:
    return " ".join(f"{code}={n}" for code, n in sorted(codes.items()))


def print_table(rows: dict[str, dict], queries: dict[str, tuple[int, int]]) -> None:
    header = ("server", "requests", "req/s", "p50 ms", "p99 ms", "errors", "SQL+chk", "srv CPU",
              "of it PG", "cli CPU", "codes")  # fmt: skip
    table = [
        (server, row["count"], f"{row['rate']:.1f}", f"{row['p50']:.1f}", f"{row['p99']:.1f}",
         row["errors"], "+".join(map(str, queries[server])), f"{row['server_cpu']:.2f}",
         f"{row['database_cpu']:.2f}", f"{row['client_cpu']:.2f}", histogram(row["codes"]))
        for server, row in rows.items()
    ]  # fmt: skip
    harness.print_table(header, table, (10, 9, 9, 9, 9, 8, 9, 9, 9, 9))
    print("(req/s: median of the rounds; CPU in ms per request; SQL+chk: statements + SELECT 1)")
    for server, row in rows.items():
        print(f"{server} req/s per round: {harness.joined(row['rounds'], 1)}")
    bare = rows["bare"]
    for server, target in TARGETS.items():
        row = rows[server]
        share = row["rate"] / bare["rate"]
        per_round = harness.ratios(row["rounds"], bare["rounds"])
        paired, cpu = statistics.median(per_round), bare["server_cpu"] / row["server_cpu"]
        print(
            f"\n{server}/bare = {share:.2f} (median rates; target >= {target:.2f}:"
            f" {'meets' if share >= target else 'BELOW'}); per round"
            f" {harness.joined(per_round, 2)}, median {paired:.2f}"
            f" ({'meets' if paired >= target else 'BELOW'})"
            f"\nserver CPU per request bare/{server} = {cpu:.2f}"
            f" ({'meets' if cpu >= target else 'BELOW'}): the rate ratio a CPU-bound server"
            " (gunicorn and PostgreSQL, clients elsewhere) would show, whatever else runs here"
        )


def wait_for_fresh_window(window: int) -> None:
    """Start the limited phase early in a rate-limit window, so it does not straddle two."""
    into = time.time() % window
    if into > window - 15:
        time.sleep(window - into + 0.5)


def limited_phase(probes: list[Probe], args) -> Phase:
    """A short run against a second gunicorn with the shop's default limits: 429s appear."""
    from django.conf import settings

    with serving(args.workers, unset=RATE_SETTINGS) as server:
        wait_for_fresh_window(settings.LICENSE_VALIDATE_WINDOW)
        return drive(server.base + SERVERS["validate"], "limited", probes, args.clients, 60)


def serving(
    workers: int, *, unset: tuple[str, ...] = ()
) -> AbstractContextManager[harness.Gunicorn]:
    """gunicorn, once it answers a body that is not a JSON object with 400."""
    return harness.gunicorn(workers, SERVERS["bare"], b"[]", unset=unset)


def print_limited(phase: Phase, workers: int) -> None:
    limit = 60  # config/settings.py's default LICENSE_VALIDATE_RATE, per client address
    print(
        f"\ndefault limits ({limit}/min per client address, 20/min per key), {workers} workers:"
        f" {phase.codes.total()} requests in {phase.elapsed:.1f} s | {histogram(phase.codes)}"
        f"\n  the limiter counts in Django's cache, here LocMem: each gunicorn worker counts on"
        f" its own, so up to {workers} x {limit} = {workers * limit} requests a minute pass from"
        f" one address instead of {limit}, unless CACHE_URL points at a shared cache"
    )


def benchmark(probes: dict[str, list[Probe]], args) -> list[Phase]:
    with serving(args.workers) as server:
        harness.print_serving(server.base, args.workers, args.clients)
        for name, url in SERVERS.items():
            warm = drive(server.base + url, name, probes[name][: args.warmup], args.clients, 60)
            if warm.errors:
                raise RuntimeError(f"{name}: warming up: {histogram(warm.codes)}")
        measured = slice(args.warmup, args.warmup + args.requests)
        work = {s: harness.split(probes[s][measured], args.rounds) for s in SERVERS}
        return run_rounds(server.base, work, args, server.process.pid)


def main() -> int:
    args = parse_args()
    configure_environment(args.database_url)
    harness.exit_on_sigterm()
    harness.recreate_database(args.database_url, MARKER_TABLE)

    import django

    django.setup()
    from django.db import connection

    rng = random.Random(20261127)
    started = time.perf_counter()
    harness.migrate(*harness.marker_table(MARKER_TABLE))
    print(f"writing {args.licenses} licenses ...", flush=True)
    issued = seed(args.licenses, rng)
    probes = make_probes(issued, args.warmup + args.requests + args.limited, rng)
    limited = probes["validate"][args.warmup + args.requests :]
    queries = {"bare": (0, 0)}
    for server in TARGETS:
        # The last probe: activating its license here takes none the measured phases need.
        queries[server] = count_queries(SERVERS[server], probes[server][-1])
    print(
        f"  done in {time.perf_counter() - started:.0f} s; SQL statements and connection health"
        f" checks (SELECT 1, CONN_HEALTH_CHECKS) per request: {queries}"
    )
    if args.profile:
        profile(probes, args.profile)
    connection.close()

    phases = benchmark(probes, args)
    print(f"load average after the run: {harness.load_average()}")
    rows = summarise(phases)
    print_table(rows, queries)
    clean = sum(row["errors"] for row in rows.values()) == 0
    if not args.limited:
        return 0 if clean else 1
    limited_run = limited_phase(limited, args)
    print_limited(limited_run, args.workers)
    return 0 if clean and limited_run.codes["429"] else 1


if __name__ == "__main__":
    sys.exit(main())
