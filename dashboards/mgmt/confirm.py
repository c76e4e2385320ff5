"""The one confirm-then-act view: every /mgmt action is a GET that says what will happen (and,
when the command may not run now, why not, with the button disabled) and a POST that runs the
command and says how it went."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from audit.commands import Command, Refused
from shop.redirects import SeeOther

from .access import staff_only


@dataclass
class Confirm:
    """What the confirmation page of `command` says, and where it goes afterwards."""

    command: Command
    find: Callable[..., Any]  # the URL's arguments → the object (or Http404)
    title: Callable[[Any], str]
    lines: Callable[[Any], list[str]]
    done: Callable[[Any, Any], str]  # (object, result) → the success message
    back: Callable[[HttpRequest, Any], str]  # where to go afterwards (and Cancel)
    form: type[forms.Form] | None = None  # its cleaned_data are the command's parameters
    button: str = ""
    after: Callable[[HttpRequest, Any, Any], HttpResponse] | None = None  # instead of back
    order: Callable[[Any], Any] = field(default=lambda obj: getattr(obj, "order", None))


def command_view(confirm: Confirm):
    command = confirm.command

    @staff_only
    @require_http_methods(["GET", "POST"])
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        obj = confirm.find(**kwargs)
        if not command.permitted(request.user):
            raise PermissionDenied(
                f"Your role does not allow this: {command.label.lower()}. Ask an Owner."
            )
        form = _form(confirm, request, obj)
        review = ""
        if request.method == "POST" and form is not None and form.is_valid():
            review = form.review() if hasattr(form, "review") else ""
            if review:  # nothing moves until the exact effect was shown and confirmed
                form = confirm.form(form.reviewed(), obj=obj)
                form.is_valid()
        if request.method == "POST" and not review and (form is None or form.is_valid()):
            params = (
                (form.params() if hasattr(form, "params") else form.cleaned_data) if form else {}
            )
            try:
                result = command.run(obj, by=request.user, **params)
            except Refused as refused:
                messages.error(request, refused.words)
            else:
                if confirm.after:
                    return confirm.after(request, obj, result)
                messages.success(request, confirm.done(obj, result))
            return SeeOther(confirm.back(request, obj))
        context = {
            "order": confirm.order(obj),
            "title": confirm.title(obj),
            "lines": confirm.lines(obj),
            "reason": command.refusal(obj, by=request.user) or "",
            "review": review,
            "button": form.button() if review else (confirm.button or command.label),
            "danger": command.danger,
            "form": form,
            "back": confirm.back(request, obj),
        }
        status = 400 if request.method == "POST" and not review else 200
        return render(request, "dashboards/mgmt/confirm.html", context, status=status)

    view.command = command  # every action URL runs a command: tests read it
    return view


def _form(confirm: Confirm, request: HttpRequest, obj) -> forms.Form | None:
    if confirm.form is None:
        return None
    data = request.POST if request.method == "POST" else None
    return confirm.form(data, obj=obj)
