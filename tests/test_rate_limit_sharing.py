"""The validate limiter in Redis, the cache every process shares: the real server on
127.0.0.1:6379 (`.ci/run` starts it), under a key prefix of each test's own, so parallel runs
never meet. The limit holds for concurrent clients and across gunicorn's worker processes."""

import contextlib
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import requests
from django.core import checks
from django.db import connection

from bench import harness
from config.caches import cache_config
from shop.ratelimit import hit

pytestmark = pytest.mark.django_db
REDIS_URL = "redis://127.0.0.1:6379/0"
VALIDATE = "/api/licenses/validate"


def redis_server() -> redis.Redis:
    server = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        server.ping()
    except redis.ConnectionError:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("CI must run the Redis tests: no Redis on 127.0.0.1:6379", pytrace=False)
        pytest.skip("no Redis on 127.0.0.1:6379 (redis-server, or .ci/run, starts one)")
    return server


@contextlib.contextmanager
def own_prefix() -> Iterator[str]:
    """A key prefix of our own; its keys (and only they) are deleted afterwards."""
    server, name = redis_server(), f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        for key in server.scan_iter(match=f"{name}:*", count=1000):
            server.delete(key)


@pytest.fixture
def prefix():
    with own_prefix() as name:
        yield name


@pytest.fixture
def redis_cache(settings, prefix):
    settings.CACHES = {"default": cache_config(f"{REDIS_URL}?key_prefix={prefix}")}
    return prefix


def test_a_redis_url_becomes_djangos_own_redis_cache_with_its_key_prefix():
    config = cache_config("rediss://:pw@cache.example.com:6380/2?key_prefix=shop&client_name=web")
    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["LOCATION"] == "rediss://:pw@cache.example.com:6380/2?client_name=web"
    assert config["KEY_PREFIX"] == "shop"
    assert config["OPTIONS"]["socket_timeout"] == 1.0


def test_other_cache_urls_are_read_by_django_environ():
    assert cache_config("locmemcache://")["BACKEND"].endswith("LocMemCache")


def test_counts_are_kept_in_redis_under_the_prefix(redis_cache):
    assert hit("client", "198.51.100.1", limit=1, window=60) == 0
    assert 1 <= hit("client", "198.51.100.1", limit=1, window=60) <= 60
    stored = list(redis_server().scan_iter(match=f"{redis_cache}:*"))
    assert len(stored) == 1
    assert redis_server().ttl(stored[0]) > 0  # a window's counter goes away by itself


def test_concurrent_clients_get_exactly_the_limit_through_redis(redis_cache):
    limit, threads, each = 37, 24, 5
    start, allowed, lock = threading.Barrier(threads), [], threading.Lock()

    def client() -> None:
        start.wait()  # every thread (each with its own Redis connection) counts at once
        mine = sum(hit("key", "abc", limit=limit, window=3600) == 0 for _ in range(each))
        with lock:
            allowed.append(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(allowed) == limit


def test_the_validate_api_answers_when_redis_is_down(client, settings, caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {"default": cache_config(f"redis://127.0.0.1:{port}/0")}
    response = client.post(
        VALIDATE, {"key": "ABCDE", "product": "nothing"}, content_type="application/json"
    )
    assert (response.json()["valid"], response.json()["code"]) == (False, "NOT_FOUND")
    assert "rate limiter cache unavailable" in caplog.text


def production_checks(settings, monkeypatch, *, workers: str | None, cache_url: str) -> set[str]:
    settings.DEBUG = False
    settings.CACHES = {"default": cache_config(cache_url)}
    if workers is None:
        monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_WORKERS", workers)
    return {message.id for message in checks.run_checks(tags=[checks.Tags.caches])}


@pytest.mark.parametrize("cache_url", ["locmemcache://", "dummycache://"])
def test_a_per_process_cache_with_several_gunicorn_workers_is_warned(
    settings, monkeypatch, cache_url
):
    found = production_checks(settings, monkeypatch, workers=None, cache_url=cache_url)
    assert "licenses.W001" in found
    assert "licenses.W001" in production_checks(
        settings, monkeypatch, workers="3", cache_url=cache_url
    )


def test_no_warning_with_redis_one_worker_or_debug(settings, monkeypatch):
    assert not production_checks(settings, monkeypatch, workers=None, cache_url=REDIS_URL)
    assert not production_checks(settings, monkeypatch, workers="1", cache_url="locmemcache://")
    settings.DEBUG = True
    assert not checks.run_checks(tags=[checks.Tags.caches])


# Several processes: gunicorn with 3 workers on PostgreSQL (an in-memory SQLite test database
# cannot be shared with another process).


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.fixture(scope="module")
def three_workers(django_db_setup):
    """gunicorn, 3 workers, limits 25 per client and 10 per key in one window that outlasts the
    tests (no window boundary can fall inside them), counting in Redis under a prefix of its own;
    yielded once every worker has counted (each holds a Redis connection named by the prefix).
    The tests share it: each sends from its own client addresses and keys."""
    if connection.vendor != "postgresql":
        pytest.skip("gunicorn's workers need a database they can share: PostgreSQL")
    with own_prefix() as prefix, pytest.MonkeyPatch.context() as monkeypatch:
        yield from serve_three_workers(prefix, monkeypatch)


def serve_three_workers(prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    environment = {
        "DATABASE_URL": database_url(),
        "CACHE_URL": f"{REDIS_URL}?key_prefix={prefix}&client_name={prefix}",
        "DEBUG": "0",
        "SECRET_KEY": "test-" + "x" * 50,
        "LICENSE_VALIDATE_RATE": "25",
        "LICENSE_VALIDATE_KEY_RATE": "10",
        "LICENSE_VALIDATE_WINDOW": str(10**9),
        "CLIENT_IP_HEADER": "X-Forwarded-For",
        "LOG_LEVEL": "WARNING",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with harness.gunicorn(3, VALIDATE, b"[]") as server:
        wait_until_every_worker_counts(server.base, prefix, workers=3)
        yield server.base


def wait_until_every_worker_counts(base: str, name: str, *, workers: int) -> None:
    """Probes from addresses of their own (so they use up no test client's limit) until
    `workers` processes hold a connection to Redis; the workers start one by one."""
    deadline, probe = time.monotonic() + 60, 0
    while len(named_connections(name)) < workers:
        assert time.monotonic() < deadline, "gunicorn's workers never all reached Redis"
        probe += 1
        outcomes = harness.run_clients(
            [f"probe-{probe}-{n}" for n in range(workers * 2)],
            workers * 2,
            30,
            lambda session, address: post(session, base, address, key=address),
        )
        assert {status for _, status in outcomes[0]} == {200}


def named_connections(name: str) -> list[dict]:
    return [c for c in redis_server().client_list() if c.get("name") == name]


def post(session: requests.Session, base: str, address: str, *, key: str) -> int:
    response = session.post(
        base + VALIDATE,
        json={"key": key, "product": "anything"},
        headers={"X-Forwarded-For": address},
        timeout=30,
    )
    return response.status_code


def test_the_client_limit_holds_across_three_gunicorn_workers(three_workers):
    sent, _ = harness.run_clients(
        [f"KEY-{n}" for n in range(100)],
        16,
        120,
        lambda session, key: post(session, three_workers, "203.0.113.9", key=key),
    )
    assert Counter(status for _, status in sent) == {200: 25, 429: 75}


def test_the_key_limit_holds_across_three_gunicorn_workers(three_workers):
    # Counted per key and client address (a stranger cannot use up the owner's allowance), so
    # one address sends it: 10 per key comes before 25 per address.
    sent, _ = harness.run_clients(
        [f"request-{n}" for n in range(60)],
        16,
        120,
        lambda session, _: post(session, three_workers, "198.51.100.60", key="SAME-KEY"),
    )
    assert Counter(status for _, status in sent) == {200: 10, 429: 50}
    others, _ = harness.run_clients(
        [f"198.51.100.{n}" for n in range(61, 64)],
        3,
        60,
        lambda session, address: post(session, three_workers, address, key="SAME-KEY"),
    )
    assert {status for _, status in others} == {200}
