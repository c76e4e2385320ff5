"""Validate throughput: POST /api/licenses/validate against a bare view that only parses the JSON.

    .venv/bin/python bench/validate_throughput.py [--licenses 100000] [--requests 6000]
        [--clients 16] [--rounds 6] [--workers 5] [--profile 2000]

gunicorn (config/gunicorn.py, sync workers) on PostgreSQL, with `--licenses` real keys in the
table (generate_key + hash_key, statuses active/suspended/revoked), serves both endpoints in one
run. Client threads post a mix of valid, unknown and wrong-product keys; the phases are
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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_validate"
SERVERS = {"bare": "/bench/validate-bare", "validate": "/api/licenses/validate"}
MARKER_TABLE = "bench_validate_marker"  # its presence marks a database this script made
RAISED_RATE = "1000000000"
# Shares of the requests: keys that exist for the product asked, that exist for another
# product, and that were never issued.
MIX = {"known": 0.6, "wrong_product": 0.2, "unknown": 0.2}
STATUS_SHARES = {"active": 0.8, "suspended": 0.1, "revoked": 0.1}
PRODUCTS = {"bench-editor": "ED", "bench-compiler": "CC", "bench-profiler": "PF"}
ORDERS = 20
COPY_LICENSES = (
    "COPY licenses_license (order_id, product_id, status, reason, dispute_id, key, key_hash,"
    " created_at, activated_at, suspended_at, revoked_at) FROM STDIN"
)


@dataclass(frozen=True)
class Issued:
    key: str
    product: str
    status: str


@dataclass(frozen=True)
class Probe:
    body: bytes
    expected: str  # the `code` a correct answer carries


@dataclass
class Phase:
    server: str
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)
    errors: int = 0
    server_cpu: float = 0.0  # seconds: gunicorn workers plus their PostgreSQL backends
    database_cpu: float = 0.0  # seconds: the PostgreSQL backends alone
    client_cpu: float = 0.0  # seconds: this process, i.e. the client threads

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


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
    """The settings both this process and gunicorn run with (the environment beats any .env)."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.validate_settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="bench-validate-throughput-" + "x" * 40,
        LICENSE_HASH_KEY="bench-validate-license-hash-key",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        SITE_URL="http://127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LICENSE_VALIDATE_RATE=RAISED_RATE,
        LICENSE_VALIDATE_KEY_RATE=RAISED_RATE,
        DISCORD_WEBHOOK_URL="",
        EMAIL_URL="dummymail://",
    )


def recreate_database(database_url: str) -> None:
    """Start from an empty database; drop an existing one only if this script made it."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    # Without the query string, which may carry Django options such as conn_health_checks.
    server = psycopg.conninfo.make_conninfo(
        urlsplit(database_url)._replace(scheme="postgresql", query="").geturl()
    )
    with psycopg.connect(server, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not _made_by_us(server, name):
            sys.exit(
                f"database {name!r} exists and was not made by this benchmark: not touching it"
            )
        if exists:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def _made_by_us(server: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(server, dbname=name) as conn:
        tables = {
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    return not tables or MARKER_TABLE in tables


def migrate() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {MARKER_TABLE} (created_at timestamptz NOT NULL)")
        cursor.execute(f"INSERT INTO {MARKER_TABLE} VALUES (now())")


def seed(count: int, rng: random.Random) -> list[Issued]:
    """`count` licenses with real keys over a few completed orders, written with one COPY."""
    from django.db import connection, transaction
    from django.utils import timezone

    from licenses.keys import generate_key, hash_key
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
    now, issued = timezone.now(), []
    statuses, weights = list(STATUS_SHARES), list(STATUS_SHARES.values())
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(COPY_LICENSES) as copy,
    ):
        for n in range(count):
            product = products[n % len(products)]
            status = rng.choices(statuses, weights)[0]
            key = generate_key(product.license_prefix)
            reason = {"active": "", "suspended": "staff", "revoked": "refund"}[status]
            copy.write_row(
                (
                    orders[n % ORDERS].pk, product.pk, status, reason, "", key, hash_key(key),
                    now, now,
                    now if status == "suspended" else None,
                    now if status == "revoked" else None,
                )
            )  # fmt: skip
            issued.append(Issued(key, product.slug, status))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE licenses_license")
    return issued


def make_probes(issued: list[Issued], count: int, rng: random.Random) -> dict[str, list[Probe]]:
    """The same `count` request bodies for both servers, each with the answer `validate` owes."""
    from licenses.keys import generate_key
    from licenses.views import CODES

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
    return {"bare": [Probe(p.body, "NOT_CHECKED") for p in probes], "validate": probes}


def count_queries(probe: Probe) -> tuple[int, int]:
    """SQL statements and connection health checks one validate request costs, in-process.

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
                response = client.post(SERVERS["validate"], probe.body, "application/json")
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, log, *, default_limits: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESSLOG": "/dev/null",
    }
    if default_limits:
        env.pop("LICENSE_VALIDATE_RATE")
        env.pop("LICENSE_VALIDATE_KEY_RATE")
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_until_serving(base: str, server: subprocess.Popen) -> None:
    import requests

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if requests.post(base + SERVERS["bare"], data=b"[]", timeout=10).status_code == 400:
                return
        except requests.RequestException:
            pass  # workers still importing Django
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def stop_gunicorn(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()  # the master stops its workers gracefully
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def drive(url: str, server: str, probes: list[Probe], clients: int, timeout: float) -> Phase:
    """Post every probe, `clients` at a time, until done or `timeout` seconds passed.

    A 200 with the expected code counts (and is timed); anything else is an error, listed in
    the code histogram under its status.
    """
    phase, lock, pending = Phase(server), threading.Lock(), iter(probes)
    deadline = time.monotonic() + timeout

    def client() -> None:
        import requests

        session, latencies, codes = requests.Session(), [], Counter()
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < deadline:
            with lock:
                probe = next(pending, None)
            if probe is None:
                break
            started = time.perf_counter()
            try:
                response = session.post(url, data=probe.body, headers=headers, timeout=30)
                status = response.status_code
                code = response.json().get("code") if status == 200 else str(status)
            except (requests.RequestException, ValueError):
                code = "no answer"
            if code == probe.expected:
                latencies.append(time.perf_counter() - started)
            elif code != "no answer" and not code.isdigit():
                code = f"wrong {code}"  # a 200 whose answer is not the one `validate` owes
            codes[code] += 1
        with lock:
            phase.latencies += latencies
            phase.codes += codes

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.elapsed = time.perf_counter() - started
    phase.errors = phase.codes.total() - len(phase.latencies)
    return phase


def split(probes: list[Probe], parts: int) -> list[list[Probe]]:
    size = -(-len(probes) // parts)
    return [probes[i : i + size] for i in range(0, len(probes), size)]


def cpu_seconds(master: int, database: str) -> dict[int, tuple[bool, float]]:
    """CPU time so far of each gunicorn worker and each PostgreSQL backend serving `database`,
    with whether it is a backend."""
    ticks, found = os.sysconf("SC_CLK_TCK"), {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        backend = cmdline.startswith("postgres: ") and f" {database} " in cmdline
        if int(stat[1]) == master or backend:  # stat[1] is the parent's pid
            found[int(proc.name)] = backend, (int(stat[11]) + int(stat[12])) / ticks  # u+s time
    return found


def metered(url: str, server: str, probes: list[Probe], args, master: int) -> Phase:
    """drive(), plus the CPU the server side and the client spent on the phase."""
    database = urlsplit(args.database_url).path.lstrip("/")
    before, client = cpu_seconds(master, database), time.process_time()
    phase = drive(url, server, probes, args.clients, args.phase_timeout)
    phase.client_cpu = time.process_time() - client
    used = {
        pid: (backend, seconds - before.get(pid, (backend, 0.0))[1])
        for pid, (backend, seconds) in cpu_seconds(master, database).items()
    }
    phase.server_cpu = sum(seconds for _, seconds in used.values())
    phase.database_cpu = sum(seconds for backend, seconds in used.values() if backend)
    return phase


def run_rounds(base: str, work: dict[str, list[list[Probe]]], args, master: int) -> list[Phase]:
    """Each round runs every server once, in a rotated order, so drift hits all of them alike."""
    phases, names = [], list(SERVERS)
    for number in range(args.rounds):
        for server in names[number % len(names) :] + names[: number % len(names)]:
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
        latencies = sorted(seconds * 1000 for p in mine for seconds in p.latencies)
        rows[server] = {
            "requests": len(latencies),
            "rate": statistics.median(p.rate for p in mine),
            "rounds": [p.rate for p in mine],
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
            "errors": sum(p.errors for p in mine),
            "codes": sum((p.codes for p in mine), Counter()),
            "server_cpu": sum(p.server_cpu for p in mine) / max(1, len(latencies)) * 1000,
            "database_cpu": sum(p.database_cpu for p in mine) / max(1, len(latencies)) * 1000,
            "client_cpu": sum(p.client_cpu for p in mine) / max(1, len(latencies)) * 1000,
        }
    return rows


def histogram(codes: Counter) -> str:
    return " ".join(f"{code}={n}" for code, n in sorted(codes.items()))


def print_table(rows: dict[str, dict], queries: dict[str, tuple[int, int]]) -> None:
    print(
        f"\n{'server':<10}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'SQL+chk':>9}{'srv CPU':>9}{'of it PG':>9}{'cli CPU':>9}   codes"
    )
    for server, row in rows.items():
        sql, checks = queries[server]
        print(
            f"{server:<10}{row['requests']:>9}{row['rate']:>9.1f}{row['p50']:>9.1f}"
            f"{row['p99']:>9.1f}{row['errors']:>8}{f'{sql}+{checks}':>9}"
            f"{row['server_cpu']:>9.2f}{row['database_cpu']:>9.2f}{row['client_cpu']:>9.2f}"
            f"   {histogram(row['codes'])}"
        )
    print("(req/s: median of the rounds; CPU in ms per request; SQL+chk: statements + SELECT 1)")
    for server, row in rows.items():
        print(f"{server} req/s per round: {', '.join(f'{rate:.1f}' for rate in row['rounds'])}")
    validate, bare = rows["validate"]["rate"], rows["bare"]["rate"]
    per_round = [
        v / b for v, b in zip(rows["validate"]["rounds"], rows["bare"]["rounds"], strict=True)
    ]
    paired, cpu = (
        statistics.median(per_round),
        rows["bare"]["server_cpu"] / rows["validate"]["server_cpu"],
    )
    print(
        f"\nvalidate/bare = {validate / bare:.2f} (median rates; target >= 0.50:"
        f" {'meets' if validate / bare >= 0.5 else 'BELOW'}); per round"
        f" {', '.join(f'{r:.2f}' for r in per_round)}, median {paired:.2f}"
        f" ({'meets' if paired >= 0.5 else 'BELOW'})"
        f"\nserver CPU per request bare/validate = {cpu:.2f}: the rate ratio a CPU-bound server"
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

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+", prefix="bench-gunicorn-", suffix=".log") as log:
        server = start_gunicorn(port, args.workers, log, default_limits=True)
        try:
            wait_until_serving(base, server)
            wait_for_fresh_window(settings.LICENSE_VALIDATE_WINDOW)
            return drive(base + SERVERS["validate"], "limited", probes, args.clients, 60)
        except BaseException:
            print_log_tail(log)
            raise
        finally:
            stop_gunicorn(server)


def print_limited(phase: Phase, workers: int) -> None:
    limit = 60  # config/settings.py's default LICENSE_VALIDATE_RATE, per client address
    print(
        f"\ndefault limits ({limit}/min per client address, 20/min per key), {workers} workers:"
        f" {phase.codes.total()} requests in {phase.elapsed:.1f} s | {histogram(phase.codes)}"
        f"\n  the limiter counts in Django's cache, here LocMem: each gunicorn worker counts on"
        f" its own, so up to {workers} x {limit} = {workers * limit} requests a minute pass from"
        f" one address instead of {limit}, unless CACHE_URL points at a shared cache"
    )


def print_log_tail(log) -> None:
    log.seek(0)
    print("gunicorn log (last lines):\n" + "".join(log.readlines()[-30:]), file=sys.stderr)


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def benchmark(probes: dict[str, list[Probe]], args) -> list[Phase]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+", prefix="bench-gunicorn-", suffix=".log") as log:
        server = start_gunicorn(port, args.workers, log, default_limits=False)
        try:
            wait_until_serving(base, server)
            print(
                f"gunicorn on {base}, {args.workers} workers; {args.clients} clients;"
                f" load average {load_average()} on {os.cpu_count()} cores"
                " (anything else running skews the figures)",
                flush=True,
            )
            for name, url in SERVERS.items():
                warm = drive(base + url, name, probes[name][: args.warmup], args.clients, 60)
                if warm.errors:
                    raise RuntimeError(f"{name}: warming up: {histogram(warm.codes)}")
            measured = slice(args.warmup, args.warmup + args.requests)
            work = {s: split(probes[s][measured], args.rounds) for s in SERVERS}
            return run_rounds(base, work, args, server.pid)
        except BaseException:
            print_log_tail(log)
            raise
        finally:
            stop_gunicorn(server)


def main() -> int:
    args = parse_args()
    configure_environment(args.database_url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.db import connection

    rng = random.Random(20261127)
    started = time.perf_counter()
    migrate()
    print(f"writing {args.licenses} licenses ...", flush=True)
    issued = seed(args.licenses, rng)
    probes = make_probes(issued, args.warmup + args.requests + args.limited, rng)
    limited = probes["validate"][args.warmup + args.requests :]
    sql, checks = count_queries(probes["validate"][0])
    queries = {"bare": (0, 0), "validate": (sql, checks)}
    print(
        f"  done in {time.perf_counter() - started:.0f} s; one validate request costs {sql} SQL"
        f" statement(s) and {checks} connection health check(s) (SELECT 1, CONN_HEALTH_CHECKS)"
    )
    if args.profile:
        profile(probes, args.profile)
    connection.close()

    phases = benchmark(probes, args)
    print(f"load average after the run: {load_average()}")
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
