"""What the benchmark scripts share: their own database, gunicorn and other subprocesses, client
threads, CPU time read from /proc, and the summaries and tables they print.

The scripts run as modules from the project's folder (`.venv/bin/python -m bench.<script>`), so
they find the shop's packages as gunicorn and the workers do, from that folder.
"""

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple, TypeVar
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent

Item = TypeVar("Item")
Result = TypeVar("Result")


# Process and environment.


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that `finally` blocks still stop our subprocesses."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def configure_environment(*, settings: str, database_url: str, name: str, **extra: str) -> None:
    """The settings this process and its subprocesses run with (the environment beats any .env).
    `extra` adds or overrides variables; nothing here may reach a mail server or Discord."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": f"bench-{name}-" + "x" * 40,
            "LICENSE_HASH_KEY": f"bench-{name}-license-hash-" + "x" * 30,
            "LOG_LEVEL": "WARNING",
            "SITE_URL": "http://127.0.0.1",
            "DISCORD_WEBHOOK_URL": "",
            "EMAIL_URL": "dummymail://",
            **extra,
        }
    )


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


# The benchmark's own database.


def recreate_database(database_url: str, marker_table: str) -> None:
    """Start from an empty database; drop an existing one only if it is empty or carries
    `marker_table`, i.e. if a benchmark made it."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    # Without the query string, which may carry Django options such as conn_health_checks.
    server = psycopg.conninfo.make_conninfo(
        urlsplit(database_url)._replace(scheme="postgresql", query="").geturl()
    )
    with psycopg.connect(server, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not _made_by_us(server, name, marker_table):
            sys.exit(
                f"database {name!r} exists and was not made by this benchmark: not touching it"
            )
        if exists:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def _made_by_us(server: str, name: str, marker_table: str) -> bool:
    import psycopg

    with psycopg.connect(server, dbname=name) as conn:
        tables = {
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    return not tables or marker_table in tables


def migrate(*statements: str) -> None:
    """The shop's migrations, then the script's own SQL (at least its marker table)."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def marker_table(name: str) -> tuple[str, str]:
    """The SQL of a table whose only purpose is to mark the database as the benchmark's."""
    return (
        f"CREATE TABLE {name} (created_at timestamptz NOT NULL)",
        f"INSERT INTO {name} VALUES (now())",
    )


# Subprocesses: gunicorn, or anything else the scripts start.


@dataclass
class Gunicorn:
    base: str  # http://127.0.0.1:<port>
    process: subprocess.Popen
    log: IO[str]


@contextlib.contextmanager
def gunicorn(
    workers: int,
    ready: str,
    malformed: bytes,
    *,
    unset: Sequence[str] = (),
    app: str = "config.wsgi",
    root: Path = ROOT,
) -> Iterator[Gunicorn]:
    """gunicorn (config/gunicorn.py) serving `app` from the checkout `root` (this one unless
    told) on a free port, without the environment variables `unset`, yielded once a POST of
    `malformed` to the path `ready` is answered 400, i.e. Django is loaded. Prints the tail of
    its log if anything fails; stops it whatever happens."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="bench-gunicorn-", suffix=".log") as log:
        process = _start_gunicorn(port, workers, log, unset=unset, app=app, root=root)
        try:
            server = Gunicorn(f"http://127.0.0.1:{port}", process, log)
            _wait_until_serving(server, ready, malformed)
            yield server
        except BaseException:
            print_log_tail(log)
            raise
        finally:
            stop(process, grace=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_gunicorn(
    port: int,
    workers: int,
    log: IO[str],
    *,
    unset: Sequence[str] = (),
    app: str = "config.wsgi",
    root: Path = ROOT,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_ACCESSLOG": "/dev/null",
    }
    for name in unset:
        env.pop(name)
    command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", app]
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)


def _wait_until_serving(server: Gunicorn, path: str, malformed: bytes) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}")
        try:
            response = requests.post(server.base + path, data=malformed, timeout=10)
            if response.status_code == 400:
                return
        except requests.RequestException:
            pass  # workers still importing Django
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def stop(process: subprocess.Popen, *, grace: float) -> None:
    """SIGTERM (gunicorn's master stops its workers, a worker finishes its current send), then
    SIGKILL after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_log_tail(log: IO[str], title: str = "gunicorn log", file: IO[str] | None = None) -> None:
    """The last lines the subprocesses wrote to `log`, to stderr unless `file` says otherwise."""
    log.flush()
    log.seek(0)
    print(f"{title} (last lines):\n" + "".join(log.readlines()[-30:]), file=file or sys.stderr)


def print_serving(base: str, workers: int, clients: int) -> None:
    print(
        f"gunicorn on {base}, {workers} workers; {clients} clients;"
        f" load average {load_average()} on {os.cpu_count()} cores"
        " (anything else running skews the figures)",
        flush=True,
    )


# CPU time from /proc: unlike the clock, it leaves out whatever else runs on the machine.


class ProcStat(NamedTuple):
    parent: int
    cpu: float  # seconds, user plus system


def proc_stat(pid: int) -> ProcStat | None:
    """From /proc/<pid>/stat; None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name before it may hold anything
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcStat(int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)


def cpu_seconds(pid: int) -> float:
    stat = proc_stat(pid)
    return stat.cpu if stat else 0.0


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the processes in `after` spent since `before` was taken."""
    # A process that appeared in between spent all its CPU in between.
    return sum(max(0.0, now - before.get(pid, 0.0)) for pid, now in after.items())


# Client threads and the phases they run.


@dataclass
class Phase:
    """One server's run of some of the work: the latency of each right answer, and errors."""

    server: str
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def run_clients(
    work: Sequence[Item],
    clients: int,
    timeout: float,
    send: Callable[[requests.Session, Item], Result],
) -> tuple[list[tuple[Item, Result]], float]:
    """`send(session, item)` for each item, from `clients` threads with a session each, until
    all are sent or `timeout` seconds passed. Returns each item sent with what `send` gave, and
    the seconds it all took."""
    lock, pending, results = threading.Lock(), iter(work), []
    deadline = time.monotonic() + timeout

    def client() -> None:
        session, mine = requests.Session(), []
        while time.monotonic() < deadline:
            with lock:
                item = next(pending, None)
            if item is None:
                break
            mine.append((item, send(session, item)))
        with lock:  # once per thread, so that the threads do not queue on it meanwhile
            results.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def split(work: list[Item], parts: int) -> list[list[Item]]:
    size = -(-len(work) // parts)
    return [work[i : i + size] for i in range(0, len(work), size)]


def interleave(names: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name): every name once a round, in an order rotated each round, so that drift
    over the run hits all of them alike."""
    for number in range(rounds):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            yield number, name


# Summaries and tables.


def summarise(phases: list[Phase]) -> dict:
    """One server's phases: right answers, the median of the phases' rates and each of them,
    p50 and p99 latency in ms, errors."""
    latencies = sorted(seconds * 1000 for p in phases for seconds in p.latencies)
    return {
        "count": len(latencies),
        "rate": statistics.median(p.rate for p in phases),
        "rounds": [p.rate for p in phases],
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "errors": sum(p.errors for p in phases),
    }


def ratios(tops: list[float], bottoms: list[float]) -> list[float]:
    return [top / bottom for top, bottom in zip(tops, bottoms, strict=True)]


def joined(values: list[float], digits: int) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in values)


def format_row(cells: Sequence[object], widths: Sequence[int]) -> str:
    """The first cell left-aligned and the next right-aligned, each in its width; a cell beyond
    the widths follows after three spaces."""
    first, *rest = (str(cell) for cell in cells[: len(widths)])
    line = first.ljust(widths[0]) + "".join(
        c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
    )
    return line + "".join(f"   {cell}" for cell in cells[len(widths) :])


def print_table(header: Sequence[str], rows: list[Sequence[object]], widths: Sequence[int]) -> None:
    print("\n" + format_row(header, widths))
    for row in rows:
        print(format_row(row, widths))
