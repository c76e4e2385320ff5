"""Shared by the /mgmt tests: a staff member, a customer, and URLs of every /mgmt view."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import User


def staff_member(email: str = "staff@example.com", role: str | None = "Owner") -> User:
    """A staff account in `role` (accounts.roles: Support, Finance, Owner; None: no role)."""
    user = User.objects.create_user(email, password="pw", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def customer_member(email: str = "ada@example.com") -> User:
    return User.objects.create_user(email, password="pw")


def mgmt_patterns() -> list[URLPattern]:
    """Every URL pattern under MGMT_PATH, read from the resolver: a new view cannot escape."""
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "mgmt":
            assert str(entry.pattern) == f"{settings.MGMT_PATH}/"
            return list(entry.url_patterns)
    raise AssertionError("no mgmt namespace")


def fill(pattern: URLPattern, values: dict[str, object]) -> str:
    """The pattern's path with its converters filled from `values` (by argument name)."""
    path = str(pattern.pattern)
    for name in pattern.pattern.converters:
        path = path.replace(f"<{_converter(path, name)}{name}>", str(values[name]))
    return f"/{settings.MGMT_PATH}/{path}"


def _converter(path: str, name: str) -> str:
    for kind in ("str:", "int:", ""):
        if f"<{kind}{name}>" in path:
            return kind
    raise AssertionError(f"{name} not in {path}")
