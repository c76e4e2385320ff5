"""Where POST /stripe/webhook/ spends its time, for one kind of event, in the gunicorn worker.

    .venv/bin/python -m bench.webhook_profile [--kind checkout|refund|dispute] [--events 300]

Creates its own database (`bench_webhook_profile` unless --database-url says otherwise; dropped
only if a benchmark made it), places orders as the shop does, prints the SQL statements one
event of each kind runs (in-process), then starts gunicorn with ONE sync worker serving
bench/profiled_wsgi.py and posts signed events one at a time: first `--events` unprofiled, to
read the worker's and its PostgreSQL backend's CPU time per event from /proc, then `--events`
more under cProfile (CPU time of the worker unless --timer wall). For refunds and disputes the
orders are paid first, unmeasured. Prints the profile's self time by library or app, the shop's
own functions by cumulative time, and the top functions by self time, all in ms per event.
"""

import argparse
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import requests

from bench import harness
from bench import webhook_throughput as bench
from bench.webhook_throughput import KINDS
from testkit import signing

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_webhook_profile"
WARMUP = 30


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, default="checkout")
    parser.add_argument("--events", type=int, default=300, help="events measured, then profiled")
    parser.add_argument("--top", type=int, default=25, help="rows per list")
    parser.add_argument("--timer", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--save", help="also keep the raw profile (pstats) in this file")
    return parser.parse_args()


def post_all(base: str, jobs: list, *, profiled: bool) -> None:
    """One client, one event at a time: the worker is never idle-waiting for a second one."""
    session = requests.Session()
    for job in jobs:
        headers = {"Stripe-Signature": signing.signature(job.body, bench.WEBHOOK_SECRET)}
        if profiled:
            headers["X-Bench-Profile"] = "1"
        response = session.post(base + "/stripe/webhook/", data=job.body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{job.kind} {job.event_id}: {response.status_code}")


def cpu_per_event(base: str, jobs: list, master: int) -> dict[str, float]:
    before = bench.cpu_snapshot(master)
    post_all(base, jobs, profiled=False)
    after = bench.cpu_snapshot(master)
    used = {part: harness.cpu_used(before[part], after[part]) for part in ("gunicorn", "postgres")}
    return {part: seconds / len(jobs) * 1000 for part, seconds in used.items()}


def component(filename: str) -> str:
    """The library, app or standard module a function's file belongs to."""
    if filename.startswith("~") or filename.startswith("<"):
        return "(built-in functions)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        depth = 3 if rest[:2] == ("django", "db") else 2 if rest[0] == "django" else 1
        return ".".join(rest[:depth]).removesuffix(".py")
    if harness.ROOT in path.parents:
        return path.relative_to(harness.ROOT).parts[0]
    return (
        "stdlib " + path.stem
        if path.parent.name.startswith("python3")
        else "stdlib " + (path.parent.name)
    )


def report(stats: pstats.Stats, events: int, top: int) -> None:
    per = 1000 / events
    raw = stats.stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in raw.values())
    print(f"\nprofiled: {total * per:.2f} ms per event in all (the profiler adds its own)")
    groups = defaultdict(float)
    for (filename, _, _), value in raw.items():
        groups[component(filename)] += value[2]
    print("\nself time by library or app, ms per event:")
    for name, seconds in sorted(groups.items(), key=lambda g: -g[1])[:top]:
        print(f"  {seconds * per:7.2f}  {seconds / total:6.1%}  {name}")
    print("\nthe shop's own functions by cumulative time, ms per event (calls per event):")
    own = [
        (value[3], value[1], key)
        for key, value in raw.items()
        if harness.ROOT in Path(key[0]).parents and not {"bench", ".venv"} & set(Path(key[0]).parts)
    ]
    for cumulative, calls, (filename, line, name) in sorted(own, reverse=True)[:top]:
        where = f"{Path(filename).relative_to(harness.ROOT)}:{line} {name}"
        print(f"  {cumulative * per:7.2f}  {calls / events:5.1f}  {where}")
    print("\ntop functions by self time, ms per event (calls per event):")
    ranked = sorted(raw.items(), key=lambda item: -item[1][2])[:top]
    for (filename, line, name), value in ranked:
        short = filename.split("site-packages/")[-1].replace(str(harness.ROOT) + "/", "")
        print(f"  {value[2] * per:7.3f}  {value[1] / events:6.1f}  {short}:{line} {name}")


def main() -> int:
    args = parse_args()
    out = args.save or tempfile.mktemp(prefix="webhook-profile-", suffix=".pstats")
    bench.configure_environment(args.database_url)
    os.environ.update(BENCH_PROFILE_OUT=out, BENCH_PROFILE_TIMER=args.timer)
    harness.exit_on_sigterm()
    harness.recreate_database(args.database_url, bench.EVENT_TABLE)

    import django

    django.setup()
    from django.db import connection

    bench.migrate()
    count = WARMUP + 2 * args.events
    print(f"placing {count} pending orders ...", flush=True)
    payments = bench.make_jobs({"full": count})["full"]
    probes = bench.make_jobs({"full": 3})
    queries = bench.count_queries(probes, list(KINDS), show=True)
    print(f"statements per event: { ({k: n for (_, k), n in queries.items()}) }")
    connection.close()

    with harness.gunicorn(1, "/bench/bare/", b"{}", app="bench.profiled_wsgi") as server:
        print(f"gunicorn on {server.base}, 1 worker; load average {harness.load_average()}")
        jobs = payments
        if args.kind != "checkout":
            post_all(server.base, payments, profiled=False)
            jobs = [bench.make_job(args.kind, job.order) for job in payments]
        post_all(server.base, jobs[:WARMUP], profiled=False)
        cpu = cpu_per_event(server.base, jobs[WARMUP : WARMUP + args.events], server.process.pid)
        started = time.perf_counter()
        post_all(server.base, jobs[WARMUP + args.events :], profiled=True)
        elapsed = time.perf_counter() - started
        requests.post(server.base + "/bench/profile-dump").raise_for_status()

    print(
        f"\n{args.kind}: {args.events} events, one at a time, without the profiler:"
        f" {cpu['gunicorn']:.2f} ms CPU in the worker + {cpu['postgres']:.2f} ms in PostgreSQL"
        f" per event; with it, {elapsed / args.events * 1000:.1f} ms wall per event;"
        f" load average {harness.load_average()}"
    )
    report(pstats.Stats(out), args.events, args.top)
    if not args.save:
        os.unlink(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
