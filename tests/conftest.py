import pytest

from testkit.fake_discord import FakeDiscord
from testkit.fake_stripe import FakeStripe
from tests.browser import browser  # noqa: F401  (Playwright's Chromium, module-scoped)


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    # Production serves hashed files from `collectstatic`; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = "whsec_offline_test_gateway"
    # As in the offline test mode dev.py runs: the password is enough for staff. The second
    # factor's own tests (test_staff_second_factor.py) turn it on.
    settings.STAFF_2FA_REQUIRED = False


@pytest.fixture(autouse=True)
def _limits_from_zero():
    # The limiters (sign-in links, the success page, logins…) count in the process's default
    # cache: without this a test's visits would count against the next test's.
    import time

    from django.core.cache import cache

    from shop import ratelimit

    cache.clear()
    # Windows begin with the test: a count of a few requests is never cut in two by a window
    # that ends between them (which made limit tests fail now and then on a slow machine).
    ratelimit.WINDOW_ORIGIN = time.time()
    yield
    ratelimit.WINDOW_ORIGIN = 0.0


@pytest.fixture(autouse=True)
def _fresh_signing_key():
    # Each test's database is rolled back under the process's cached signing key.
    from licenses.certificates import forget_signer

    forget_signer()
    yield
    forget_signer()


@pytest.fixture
def staff():
    from accounts.models import User

    return User.objects.create_superuser("boss@example.com", "pw")


@pytest.fixture
def fake_stripe(settings):
    """A running fake Stripe, with the shop's settings pointing the SDK at it."""
    fake = FakeStripe().start()
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def fake_discord(settings):
    """A running fake Discord with short limits, and the worker's settings matching them."""
    fake = FakeDiscord(
        bucket_limit=5, bucket_window=0.2, channel_limit=30, channel_window=1.5, hang_seconds=6.0
    ).start()
    fake.auto_register = False
    settings.DISCORD_API_BASE = fake.url
    settings.DISCORD_WEBHOOK_URL = ""
    settings.DISCORD_CHANNEL_LIMIT = fake.channel_limit
    settings.DISCORD_CHANNEL_WINDOW = fake.channel_window
    # Generous: a request that times out although Discord posted it is sent again (at most one
    # duplicate, by design), and a busy machine must not make tests see that. Tests of hangs
    # shorten both (`short_timeouts`).
    settings.DISCORD_TIMEOUT = 5.0
    settings.DISCORD_BACKOFF_BASE = 0.05
    settings.DISCORD_BACKOFF_CAP = 0.2
    settings.DISCORD_POLL_INTERVAL = 0.02
    yield fake
    fake.stop()
