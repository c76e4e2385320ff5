from django.conf import settings
from django.core import checks

from .discord import InvalidWebhookURL, parse_webhook_url


@checks.register()
def check_discord_webhook_url(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if not settings.DISCORD_WEBHOOK_URL:
        return []
    try:
        parse_webhook_url(settings.DISCORD_WEBHOOK_URL)
    except InvalidWebhookURL:
        return [
            checks.Error(
                "DISCORD_WEBHOOK_URL is not a Discord webhook URL.",
                hint="Copy it from Discord: Server settings → Integrations → Webhooks.",
                id="notifications.E001",
            )
        ]
    return []
