from django import forms
from django.contrib import admin
from django.template.loader import render_to_string

from audit.admin import CommandActions, command_action
from shop.admin_mixins import ViewOnly, pretty_json

from . import commands
from .discord import InvalidWebhookURL, parse_webhook_url
from .events import Event
from .models import Delivery, DeliveryAttempt, Destination, DestinationMode, Notification


class DestinationForm(forms.ModelForm):
    webhook_url = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Paste the webhook URL from Discord (Server settings → Integrations → Webhooks). "
        "Only its id, token and thread (?thread_id=) are kept; leave empty to keep the current one.",
    )
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple)
    # Not required: a form posted without it (a script, an older page) keeps the mode there is.
    mode = forms.ChoiceField(
        choices=DestinationMode.choices,
        widget=forms.RadioSelect,
        required=False,
        help_text="Every event posts each event as a message of its own. Compact keeps one "
        "message per order and edits it as the order moves (an edit leaves the message where "
        "it was: a late refund changes a message further up the channel). Test messages and "
        "license events are always new messages.",
    )

    class Meta:
        model = Destination
        fields = ["name", "webhook_url", "events", "mode", "enabled", "thread_id", "username"]
        help_texts = {
            "thread_id": "Post into this thread. A forum or media channel needs one (a post's "
            "id); a pasted URL's ?thread_id= fills it in."
        }

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"]
        self.pasted_thread = ""
        if not url and not self.instance.token:
            raise forms.ValidationError("A webhook URL is needed.")
        if url:
            try:
                webhook = parse_webhook_url(url)
            except InvalidWebhookURL as error:
                raise forms.ValidationError(str(error)) from None
            self.instance.webhook_id, self.instance.token = webhook.webhook_id, webhook.token
            self.pasted_thread = webhook.thread_id
        return ""  # the URL itself is never stored or shown again

    def clean_mode(self) -> str:
        return self.cleaned_data["mode"] or self.instance.mode or DestinationMode.EVERY_EVENT

    def clean(self) -> dict:
        cleaned = super().clean()
        if getattr(self, "pasted_thread", ""):  # the URL's thread wins over the field
            cleaned["thread_id"] = self.pasted_thread
        return cleaned

    def save(self, commit: bool = True):
        destination = super().save(commit=False)
        # Staff decide from here: enabled, or switched off (and then it gets no messages).
        destination.disabled_reason = ""
        if commit:
            destination.save()
        return destination


@admin.register(Destination)
class DestinationAdmin(admin.ModelAdmin):
    form = DestinationForm
    list_display = [
        "name",
        "webhook_id",
        "mode",
        "enabled",
        "last_success_at",
        "last_error_at",
        "disabled_reason",
    ]
    readonly_fields = [
        "webhook_id",
        "disabled_reason",
        "last_success_at",
        "last_error_at",
        "last_error",
    ]

    def get_fields(self, request, obj=None):
        return [*DestinationForm.Meta.fields, *self.readonly_fields]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "at",
        "edit",
        "status_code",
        "error",
        "message_id",
        "batch_size",
        "fallback",
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(CommandActions, ViewOnly, admin.ModelAdmin):
    list_display = [
        "notification",
        "destination",
        "status",
        "edited",
        "attempts",
        "last_status",
        "sent_at",
    ]
    list_filter = ["status", "destination"]
    list_select_related = ["notification", "destination"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = [
        command_action(
            commands.resend_delivery,
            description="Send again (dead or sent messages)",
            done="queued",
        )
    ]


@admin.register(Notification)
class NotificationAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["event", "__str__", "order", "created_at"]
    list_filter = ["event"]
    readonly_fields = ["event", "order", "preview", "created_at", "embed_json"]
    fields = readonly_fields
    list_select_related = ["order"]

    class Media:
        css = {"all": ["css/embed.css"]}  # the preview's look (no inline styles: CSP)

    @admin.display(description="Embed (JSON)")
    def embed_json(self, notification: Notification) -> str:
        return pretty_json(notification.embed)

    @admin.display(description="Preview")
    def preview(self, notification: Notification) -> str:
        """The embed roughly as Discord shows it (all text escaped)."""
        return render_to_string("notifications/embed_preview.html", {"embed": notification.embed})
