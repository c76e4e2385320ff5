import pytest

from tests.browser import browser  # noqa: F401  (Playwright's Chromium, module-scoped)
from tests.fake_discord import fake_discord  # noqa: F401  (the fake Discord fixture)
from tests.fake_stripe import fake_stripe  # noqa: F401  (the fake Stripe fixture)


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
    from django.core.cache import cache

    cache.clear()


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
