"""The fake Discord's random faults (for soak runs): seeded, so a run's faults can be replayed,
and what a faulted request does to the channel: nothing."""

import contextlib

import pytest
import requests

from notifications.models import Delivery, DeliveryStatus
from testkit.fake_discord import FakeDiscord
from tests.test_discord_delivery import deliver_all, notify, short_timeouts, titles

pytestmark = pytest.mark.django_db


def faults_met(seed: int, count: int = 60, **rates: float) -> list[str]:
    """`count` posts to a fresh fake with `rates`; the fault each one met ("" for none)."""
    fake = FakeDiscord(hang_seconds=0.05, seed=seed, **rates).start()
    try:
        fake.add_webhook("1", "token")
        with requests.Session() as session:
            for n in range(count):
                body = {"embeds": [{"title": f"message {n}"}]}
                with contextlib.suppress(requests.RequestException):  # dropped, or a hang
                    session.post(f"{fake.url}/webhooks/1/token?wait=true", json=body, timeout=2)
        # A faulted request posts nothing (the others are posted or meet a 429).
        posted = {r.message_id for r in fake.requests if r.status == 200}
        assert all(not r.fault for r in fake.requests if r.message_id in posted)
        assert not [r for r in fake.requests if r.fault and r.message_id]
        return [r.fault for r in fake.requests]
    finally:
        fake.stop()


def test_the_same_seed_meets_the_same_faults_and_another_seed_others():
    first = faults_met(seed=7, fail_rate=0.3, hang_rate=0.1)
    assert first == faults_met(seed=7, fail_rate=0.3, hang_rate=0.1)
    assert first != faults_met(seed=8, fail_rate=0.3, hang_rate=0.1)
    assert set(first) == {"", "500", "502", "drop", "hang"}


def test_without_rates_no_request_meets_a_fault_and_with_a_full_rate_every_one():
    assert set(faults_met(seed=1, count=10)) == {""}
    assert "" not in faults_met(seed=1, count=10, fail_rate=1.0)
    assert set(faults_met(seed=1, count=10, hang_rate=1.0)) == {"hang"}


def test_rates_beyond_certainty_are_refused():
    with pytest.raises(AssertionError):
        FakeDiscord(fail_rate=0.9, hang_rate=0.2)


def test_the_worker_delivers_everything_once_through_a_fifth_of_requests_failing(
    fake_discord, settings
):
    short_timeouts(fake_discord, settings)
    fake_discord.hang_seconds = 2.2
    fake_discord.fail_rate, fake_discord.hang_rate = 0.2, 0.02
    fake_discord.random.seed(2026)
    destination = fake_discord.destination("orders")
    for n in range(60):
        notify(f"soak {n}")

    deliver_all(timeout=120)

    assert titles(fake_discord, destination) == [f"soak {n}" for n in range(60)]
    assert Delivery.objects.exclude(status=DeliveryStatus.SENT).count() == 0
    assert [r for r in fake_discord.requests if r.fault]  # the seed's draws met some
    assert fake_discord.violations() == []
