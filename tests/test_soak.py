"""The soak at a small size: a few hundred orders' lifecycles through gunicorn and the workers,
with the fake Discord failing and hanging, a delivery worker killed mid-send and PostgreSQL
stopped and started; bench/soak.py checks that nothing is lost or done twice and exits 1 if so.

It runs PostgreSQL clusters of its own (never the shared one), so it needs PostgreSQL's server
binaries; it belongs with the PostgreSQL tests.
"""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from bench import private_postgres
from bench import soak as bench_soak

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL soak"),
    pytest.mark.skipif(not private_postgres.available(), reason="needs initdb and pg_ctl"),
]


def soak(*options: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    command = [sys.executable, "-m", "bench.soak", *options]
    return subprocess.run(
        command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=900
    )


def test_a_few_hundred_lifecycles_through_faults_a_kill_and_an_outage_lose_nothing():
    done = soak("--orders", "200", "--outage", "5", "--workers", "3", "--seed", "13")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "check OK" in done.stdout
    assert "killed delivery worker" in done.stdout
    assert "PostgreSQL started again" in done.stdout
    # The outage was felt: events were answered 500 and posted again.
    assert "{500:" in done.stdout, done.stdout[-2000:]


def test_a_soak_that_cannot_finish_in_time_exits_non_zero():
    done = soak("--orders", "10", "--outage", "0", "--workers", "1", "--timeout", "1")
    assert done.returncode != 0
    assert "check OK" not in done.stdout


def answer(started: float, status: int) -> bench_soak.Answer:
    return bench_soak.Answer(started=started, seconds=0.1, status=status)


def test_a_5xx_counts_against_the_run_only_outside_the_outage():
    moments = bench_soak.Moments(outage=(100.0, 110.0))
    inside = [answer(99.95, 500), answer(105, 502), answer(109, 0), answer(112, 500)]
    assert bench_soak.check_answers([answer(50, 200), *inside], moments) == []
    assert bench_soak.check_answers([answer(90, 500)], moments) == [
        "webhook: answers outside the outage {500: 1}"
    ]
    assert bench_soak.check_answers([answer(105, 400)], moments) != []  # 4xx: never
