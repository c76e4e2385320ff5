"""What a staff member does to their own account on /mgmt (audit.commands' shape)."""

from audit.commands import Command

from .models import User


class SetTimeZone(Command):
    """The zone /mgmt shows this member's times in (blank: the shop's TIME_ZONE)."""

    name, label = "accounts.set_time_zone", "Save my time zone"
    permission = "orders.view_order"  # whoever may open /mgmt
    model = User

    def lock(self, user: User) -> User:
        return User.objects.select_for_update().get(pk=user.pk)  # request.user is lazy

    def why_not(self, user: User, *, by) -> str | None:
        if by is None or user.pk != by.pk:
            return "Each member sets their own time zone."
        return None

    def act(self, user: User, *, by, time_zone: str) -> None:
        user.time_zone = time_zone
        user.save(update_fields=["time_zone"])

    def target_of(self, user: User) -> str:
        return user.email

    def detail_of(self, user: User, result, *, time_zone: str) -> str:
        return f"time zone: {time_zone or 'the shop’s'}"


set_time_zone = SetTimeZone()
