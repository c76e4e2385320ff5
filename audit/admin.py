from django.contrib import admin, messages

from shop.admin_mixins import ViewOnly

from .commands import Command, Refused
from .models import Action


def command_action(command: Command, *, description: str = "", done: str = "done"):
    """An admin action that runs `command` on each selected object, as /mgmt would: the same
    permission, the same refusals in words, the same audit record."""

    def run(modeladmin, request, queryset):
        for obj in queryset:
            try:
                command.run(obj, by=request.user)
            except Refused as refused:
                modeladmin.message_user(request, f"{obj}: {refused.words}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{obj}: {done}", messages.SUCCESS)

    run.__name__ = command.name.replace(".", "_")
    run.command = command  # CommandActions offers it to those it permits; tests check them all
    return admin.action(description=description or command.label)(run)


class CommandActions:
    """A ModelAdmin mixin: no bulk delete, and each command action offered only to those whose
    role allows it (the command refuses anyone else all the same)."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return {
            name: entry
            for name, entry in actions.items()
            if getattr(entry[0], "command", None) is None
            or entry[0].command.permitted(request.user)
        }


@admin.register(Action)
class ActionAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["created_at", "user", "command", "order", "target", "outcome"]
    list_filter = ["outcome", "command"]
    search_fields = ["order__number", "user__email", "target"]
    list_select_related = ["user", "order"]
    readonly_fields = [f.name for f in Action._meta.fields]
