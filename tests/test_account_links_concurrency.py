"""Sign-in links raced on PostgreSQL with real threads: one link signs in once, and two first
sign-ins of one new email make one account."""

import pytest
from django.db import connection

from accounts.models import User
from dashboards.account.links import BadLink, make_link_token, use_link
from tests.test_license_pool_concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="races need PostgreSQL"),
]


def attempt(token: str, outcomes: list) -> None:
    try:
        outcomes.append(use_link(token)[0].email)
    except BadLink as bad:
        outcomes.append(bad.words)


def test_one_link_used_twice_at_once_signs_in_once():
    token = make_link_token(email="ada@example.com")
    outcomes: list = []
    run_at_once([lambda: attempt(token, outcomes)] * 2)
    assert sorted(outcomes) == [
        "This sign-in link has already been used: each link works once.",
        "ada@example.com",
    ]


def test_two_first_sign_ins_of_one_email_at_once_make_one_account():
    tokens = [make_link_token(email="new@example.com") for _ in range(2)]
    outcomes: list = []
    run_at_once([lambda t=t: attempt(t, outcomes) for t in tokens])
    assert outcomes == ["new@example.com", "new@example.com"]
    assert User.objects.filter(email="new@example.com").count() == 1
