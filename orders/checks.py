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
        # Anyone can press "Pay" on the test checkout, and its webhook secret is public.
        errors.append(
            checks.Error(
                "STRIPE_SECRET_KEY is empty: payments run through the offline test gateway, "
                "which hands out licenses for free.",
                hint="Set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET for production.",
                id="orders.E003",
            )
        )
    if settings.STRIPE_SECRET_KEY.startswith("sk_live_") and not settings.SITE_URL.startswith(
        "https://"
    ):
        errors.append(checks.Error("Live Stripe keys need an https:// SITE_URL.", id="orders.E002"))
    return errors


@checks.register()
def check_checkout_expiry(app_configs, **kwargs) -> list[checks.CheckMessage]:
    minutes = settings.CHECKOUT_EXPIRES_MINUTES
    if 30 <= minutes <= 1440:
        return []
    return [
        checks.Error(
            f"CHECKOUT_EXPIRES_MINUTES is {minutes}: Stripe accepts 30 to 1440 minutes.",
            hint="Set it between 30 (half an hour) and 1440 (a day); the default is 60.",
            id="orders.E004",
        )
    ]
