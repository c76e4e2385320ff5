"""Commands: everything a person does to the shop's objects, in one shape.

Each domain app has one module of commands (orders.commands, licenses.commands,
notifications.commands). A command knows:

- `permission`: the Django permission it needs (staff roles are groups of them; a customer's
  command has none and needs the order to be theirs instead);
- `refusal(obj, *, by)`: the one place that says whether it may run now, and why not, in words;
- `run(obj, *, by, ...)`: re-checks under the row lock, acts, and writes its audit record
  (audit.Action) in the same transaction, so an action never happens unrecorded and a record
  never tells of an action that was rolled back. A refused attempt is recorded too.

Screens (/mgmt, /account, the admin) call commands and nothing else: a button is drawn from
`refusal()` (absent when the person may not use it or it does not apply, disabled with the reason
when the state forbids it now), and a confirmation page says the same reason.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from django.db import models, transaction

from .models import Action, Outcome


class Refused(Exception):
    """The command may not run now; `words` say why, for the person who asked. `recorded`: its
    audit record is written already; `code`: the outside service's, when it refused."""

    def __init__(self, words: str, *, recorded: bool = False, code: str = "") -> None:
        super().__init__(words)
        self.words = words
        self.recorded = recorded
        self.code = code


@dataclass(frozen=True)
class Button:
    label: str
    url: str
    reason: str  # "" when it may be pressed; else why it is disabled
    danger: bool = False

    @property
    def enabled(self) -> bool:
        return not self.reason


# Every command made, so that a record can be shown in its command's words (label_of).
_MADE: list["Command"] = []


class Command:
    name: ClassVar[str] = ""  # "orders.refund": the audit record's command
    label: ClassVar[str] = ""  # a button's words
    permission: ClassVar[str | None] = None  # "orders.refund_order"; None: the customer's own
    danger: ClassVar[bool] = False
    model: ClassVar[type[models.Model]]

    def __new__(cls, *args, **kwargs):
        command = super().__new__(cls)
        _MADE.append(command)
        return command

    # Who may, and when.

    def permitted(self, by) -> bool:
        if self.permission is None:
            return by is not None and by.is_authenticated
        return by is not None and by.is_active and by.is_staff and by.has_perm(self.permission)

    def applies(self, obj) -> bool:
        """Whether the command means anything for `obj` in its state (else no button at all)."""
        return True

    def why_not(self, obj, *, by) -> str | None:
        """Why the state forbids it now, in words; None when it may run."""
        return None

    def refusal(self, obj, *, by) -> str | None:
        if not self.permitted(by):
            return f"Your role does not allow this ({self.label.lower()})."
        return self.why_not(obj, by=by)

    def button(self, obj, *, by, url: str) -> Button | None:
        """The button for `obj`: None when `by` may not use it or it does not apply."""
        if not self.permitted(by) or not self.applies(obj):
            return None
        return Button(self.label, url, self.why_not(obj, by=by) or "", self.danger)

    # Acting.

    def lock(self, obj):
        return type(obj).objects.select_for_update().get(pk=obj.pk)

    def act(self, obj, *, by, **params) -> Any:
        raise NotImplementedError

    def order_of(self, obj):
        """The order the record is filed under (None for a destination, a product…)."""
        return getattr(obj, "order", None)

    def target_of(self, obj) -> str:
        return ""

    def detail_of(self, obj, result, **params) -> str:
        return ""

    def check(self, obj, *, by) -> None:
        """Refused (recorded) unless it may run now: before an outside call, without a lock."""
        why = self.refusal(obj, by=by)
        if why:
            self.refused(obj, by=by, words=why)

    def run(self, obj, *, by, **params) -> Any:
        """Lock, check again, act and record, in one transaction."""
        with recording_refusals(self, obj, by):
            with transaction.atomic():
                obj = self.lock(obj)
                why = self.refusal(obj, by=by)
                if why:
                    raise Refused(why)
                result = self.act(obj, by=by, **params)
                self.record(obj, by=by, detail=self.detail_of(obj, result, **params))
            return result

    # Records.

    def record(
        self, obj, *, by, detail: str = "", outcome: str = Outcome.DONE, target: str = ""
    ) -> Action:
        return Action.objects.create(
            user=by if by is not None and by.is_authenticated else None,
            command=self.name,
            order=self.order_of(obj),
            target=(target or self.target_of(obj))[:255],
            detail=detail[:500],
            outcome=outcome,
        )

    def refused(self, obj, *, by, words: str, code: str = "") -> NoReturn:
        """Record the refusal and raise it. Not inside a transaction that will roll back: raise
        Refused there, within `recording_refusals`, instead."""
        self.record(obj, by=by, detail=words, outcome=Outcome.REFUSED)
        raise Refused(words, recorded=True, code=code)


@contextmanager
def recording_refusals(command: Command, obj, by) -> Iterator[None]:
    """A Refused raised inside rolled its transaction back, its record with it: record it
    once the transaction is gone."""
    try:
        yield
    except Refused as refused:
        if not refused.recorded:
            command.record(obj, by=by, detail=refused.words, outcome=Outcome.REFUSED)
            refused.recorded = True
        raise


def finish(action: Action, *, outcome: str, detail: str = "") -> None:
    """An outside call's answer: the record written before the call gets its outcome."""
    action.outcome = outcome
    action.detail = (detail or action.detail)[:500]
    action.save(update_fields=["outcome", "detail"])


def label_of(name: str) -> str:
    """A command's words ("Refund") from its name ("orders.refund"), or the name if it is gone."""
    return next((command.label for command in _MADE if command.name == name), name)
