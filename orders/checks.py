from django.conf import settings
from django.core import checks

OFFLINE_SECRET = "whsec_offline_test_gateway"


@checks.register(checks.Tags.security, deploy=True)
def check_stripe_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    if settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET == OFFLINE_SECRET:
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is the offline default.",
                hint="Copy the endpoint's signing secret (whsec_…) from the Stripe dashboard.",
                id="orders.E001",
            )
        )
    if not settings.STRIPE_SECRET_KEY:
        errors.append(
            checks.Warning(
                "STRIPE_SECRET_KEY is empty: payments run through the offline test gateway.",
                id="orders.W001",
            )
        )
    if settings.STRIPE_SECRET_KEY.startswith("sk_live_") and not settings.SITE_URL.startswith(
        "https://"
    ):
        errors.append(checks.Error("Live Stripe keys need an https:// SITE_URL.", id="orders.E002"))
    return errors
