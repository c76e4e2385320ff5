"""One mailbox, one account (issue 19): addresses are compared by their canonical form, exactly,
on every database. A lookalike address is its own account, never someone else's."""

import pytest
from django.apps import apps
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.addresses import InvalidAddress, canonical_email, lookalike_warning
from accounts.models import User
from dashboards.account.links import find_user, make_link_token, read_link_token
from orders.models import Order
from tests.account_support import ask_for_link, emailed_link, order_in
from tests.factories import make_product

pytestmark = pytest.mark.django_db

DOTLESS_I, LONG_S, KELVIN = "\u0131", "\u017f", "\u212a"
CYRILLIC_O, CAPITAL_I_DOT, SOFT_HYPHEN, ZERO_WIDTH = "\u043e", "\u0130", "\u00ad", "\u200b"
OWNER = "owner@licenseshop.io"
LOOKALIKE = f"owner@l{DOTLESS_I}censeshop.io"  # the attacker's domain, xn--lcenseshop-xub.io


def fullwidth(text: str) -> str:
    """Fullwidth letters and digits (the @ and dots stay as they are)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() and c.isascii() else c for c in text)


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def signed_in(client: Client) -> User | None:
    user_id = client.session.get(SESSION_KEY)
    return User.objects.get(pk=user_id) if user_id else None


def sign_in_by_link(client: Client, typed: str) -> User:
    assert ask_for_link(client, typed).status_code == 200
    path = emailed_link()
    assert client.post(path).status_code == 303
    return signed_in(client)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        (fullwidth("ada@example.com"), "ada@example.com"),
        (f"ada@exampl{LONG_S}.com".replace("exampl" + LONG_S, "example"), "ada@example.com"),
        (f"{LONG_S}ales@example.com", "sales@example.com"),  # NFKC: long s is s
        (f"{KELVIN}im@example.com", "kim@example.com"),  # NFKC: the Kelvin sign is K
        (f"owner@licen{LONG_S}eshop.io", OWNER),  # UTS 46 maps it in a domain too
        (LOOKALIKE, "owner@xn--lcenseshop-xub.io"),
        (f"{DOTLESS_I}an@example.com", f"{DOTLESS_I}an@example.com"),  # lower case already
        ("ada@m\u00fcller.de", "ada@xn--mller-kva.de"),
        ("  ada@example.com ", "ada@example.com"),
    ],
)
def test_the_canonical_form_folds_spellings_of_one_mailbox_and_keeps_lookalikes_apart(
    typed, canonical
):
    assert canonical_email(typed) == canonical
    assert canonical_email(canonical) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        f"ow{SOFT_HYPHEN}ner@licenseshop.io",
        f"owner@license{ZERO_WIDTH}shop.io",
        '"own er"@licenseshop.io',
        "owner@licenseshop.io\u202e",  # a right-to-left override
        "no-at-sign.example.com",
        "owner@-bad-.io",
    ],
)
def test_an_address_with_invisible_characters_or_no_valid_domain_is_refused(typed):
    with pytest.raises(InvalidAddress):
        canonical_email(typed)


def test_a_dotless_i_lookalike_domain_signs_in_its_own_account_never_the_owners():
    owned = order_in("completed", email=OWNER)
    owner = User.objects.create_user(OWNER, is_staff=True)
    attacker = Client()

    user = sign_in_by_link(attacker, LOOKALIKE)

    assert mail.outbox[-1].to == ["owner@xn--lcenseshop-xub.io"]  # the attacker's own mailbox
    assert user.pk != owner.pk and user.email == "owner@xn--lcenseshop-xub.io"
    assert not user.is_staff
    assert owned.number not in attacker.get("/account/").content.decode()
    assert attacker.get(f"/account/orders/{owned.number}/").status_code == 404
    assert attacker.get("/mgmt/").status_code == 302  # to the staff login, not a page


def test_a_long_s_spelling_of_an_address_is_mailed_to_that_mailbox_not_a_lookalike():
    """PostgreSQL's UPPER() of the long s is S: matching with it would hand `sales@` to whoever typed
    the long s. The canonical form is `sales@…` itself: the link goes to the real mailbox."""
    ask_for_link(Client(), f"{LONG_S}ales@licenseshop.io")
    assert mail.outbox[-1].to == ["sales@licenseshop.io"]


def test_the_pre_hijack_fails_the_real_owner_gets_their_own_account():
    """The attacker signs in first with the lookalike; the owner's later sign-in lands in the
    owner's account, not the attacker's, and sees the owner's orders only."""
    attacker_user = sign_in_by_link(Client(), LOOKALIKE)
    owned = order_in("completed", email=OWNER)
    owner = Client()

    owner_user = sign_in_by_link(owner, OWNER)

    assert mail.outbox[-1].to == [OWNER]
    assert owner_user.pk != attacker_user.pk and owner_user.email == OWNER
    assert owned.number in owner.get("/account/").content.decode()
    assert Order.objects.filter(email=attacker_user.email).count() == 0


def test_an_order_bought_with_any_spelling_of_an_address_belongs_to_that_mailbox(client):
    product = make_product(slug="pro")
    response = client.post("/checkout/pro/", {"email": fullwidth("Ada@Example.com")})
    assert response.status_code == 303
    order = Order.objects.get()
    assert order.email == "ada@example.com"
    assert find_user("ADA@example.com") is None  # no account before a sign-in
    assert product.slug == "pro"


def test_checkout_and_sign_in_refuse_an_address_with_invisible_characters(client):
    make_product(slug="pro")
    hidden = f"ow{SOFT_HYPHEN}ner@licenseshop.io"
    page = client.post("/checkout/pro/", {"email": hidden})
    assert page.status_code == 400
    assert not Order.objects.exists()
    page = ask_for_link(client, hidden)
    assert page.status_code == 400
    assert "invisible characters" in page.content.decode()
    assert mail.outbox == []


def test_spellings_of_one_mailbox_share_one_sign_in_limit(client, settings):
    settings.ACCOUNT_LINK_EMAIL_RATE = 2
    assert ask_for_link(client, "ada@example.com").status_code == 200
    assert ask_for_link(client, fullwidth("ADA@example.com")).status_code == 200
    assert ask_for_link(client, "Ada@EXAMPLE.com").status_code == 429
    assert len(mail.outbox) == 2


def test_a_link_holding_an_address_that_is_not_canonical_signs_no_one_in():
    """A link made before addresses were canonical (its address only lower-cased) was mailed to
    the address as typed: it must not open the canonical account."""
    from django.core import signing

    from dashboards.account.links import SALT, BadLink

    token = signing.dumps(
        {"e": f"{LONG_S}ales@licenseshop.io", "n": "nonce", "t": 1e10, "x": ""},
        salt=SALT,
        compress=True,
    )
    with pytest.raises(BadLink):
        read_link_token(token)
    assert read_link_token(make_link_token(email="Sales@licenseshop.io")).email == (
        "sales@licenseshop.io"
    )


def test_the_password_login_matches_the_canonical_address_exactly(client):
    User.objects.create_superuser("boss@example.com", "correct horse battery")
    login = "/admin/login/?next=/admin/"
    lookalike = {"username": f"boss@exampl{CYRILLIC_O}.com", "password": "correct horse battery"}
    client.post(login, lookalike)
    assert SESSION_KEY not in client.session
    same = {"username": "BOSS@Example.com", "password": "correct horse battery"}
    client.post(login, same)
    assert client.session.get(SESSION_KEY)


def test_staff_see_a_lookalike_address_marked_on_the_order_and_in_the_list(client, staff):
    order = order_in("completed", email=f"{CYRILLIC_O}wner@licenseshop.io")
    client.force_login(staff)
    page = client.get(f"/mgmt/orders/{order.number}/").content.decode()
    assert "Lookalike risk: mixes Cyrillic and Latin letters" in page
    assert "lookalike?" in client.get("/mgmt/orders/").content.decode()
    assert lookalike_warning(OWNER) == ""
    assert "the domain is l\u0131censeshop.io" in lookalike_warning(canonical_email(LOOKALIKE))


def test_the_migration_stores_canonical_addresses_and_keeps_one_account_per_mailbox():
    from importlib import import_module

    users = import_module("accounts.migrations.0002_canonical_emails")
    orders = import_module("orders.migrations.0008_canonical_order_emails")
    first = User.objects.create_user("ada@example.com")
    second = User.objects.create_user("bob@example.com")
    third = User.objects.create_user("cy@example.com")
    order = order_in("completed", email="ada@example.com")
    # Rows as the shop stored them before: lower-cased only.
    User.objects.filter(pk=first.pk).update(email=fullwidth("ada") + "@example.com")
    User.objects.filter(pk=second.pk).update(email="ada@example.com")
    User.objects.filter(pk=third.pk).update(email=f"cy@exampl{LONG_S.upper()}.com".lower())
    Order.objects.filter(pk=order.pk).update(email=fullwidth("ada") + "@example.com")

    users.canonicalise(apps, None)
    orders.canonicalise(apps, None)

    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    order.refresh_from_db()
    assert (first.email, first.is_active) == ("ada@example.com", True)  # the oldest keeps it
    assert second.email == f"duplicate-{second.pk}@accounts.invalid" and not second.is_active
    assert order.email == "ada@example.com"


# Letters and their confusables: case, fullwidth, compatibility forms and other scripts.
VARIANTS = {
    "a": ["a", "A", "\uff41", "\u0430"],
    "i": ["i", "I", DOTLESS_I, CAPITAL_I_DOT, "\uff49"],
    "s": ["s", "S", LONG_S, "\uff53"],
    "k": ["k", "K", KELVIN],
    "o": ["o", "O", CYRILLIC_O, "\u03bf"],
    "e": ["e", "E", "\u0435"],
}


@st.composite
def spelling(draw, word: str) -> str:
    return "".join(draw(st.sampled_from(VARIANTS.get(c, [c]))) for c in word)


@st.composite
def address_pair(draw) -> tuple[str, str]:
    local = draw(st.sampled_from(["sales", "kai", "ike", "oskar"]))
    domain = draw(st.sampled_from(["kiosk.io", "seika.de", "ask.example"]))
    return tuple(f"{draw(spelling(local))}@{draw(spelling(domain))}" for _ in range(2))


def test_two_addresses_reach_one_account_exactly_when_their_canonical_forms_are_equal():
    """On PostgreSQL and SQLite alike: the second address's link signs in the first one's
    account if and only if the canonical forms are equal, every link is mailed to the canonical
    form of the address it was asked for, and an address the form refuses (a TLD that is not
    one) is refused in every spelling."""

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(pair=address_pair())
    def one_account_per_mailbox(pair: tuple[str, str]) -> None:
        try:
            canonical = tuple(canonical_email(typed) for typed in pair)
        except InvalidAddress:
            return
        cache.clear()
        mail.outbox.clear()
        with transaction.atomic():
            a, b = (reach(typed) for typed in pair)
            if canonical[0] == canonical[1]:
                assert (a is None) == (b is None)
            if a and b:
                assert (a.pk == b.pk) == (canonical[0] == canonical[1])
                assert (a.email, b.email) == canonical
            sent_to = [[c] for c, user in zip(canonical, (a, b), strict=True) if user]
            assert [m.to for m in mail.outbox] == sent_to
            transaction.set_rollback(True)

    one_account_per_mailbox()


def reach(typed: str) -> User | None:
    """The account a link asked for `typed` signs in, or None when the form refuses it."""
    client = Client()
    asked = ask_for_link(client, typed)
    if asked.status_code == 400:
        return None
    assert asked.status_code == 200
    assert client.post(emailed_link()).status_code == 303
    return signed_in(client)


def test_staff_cannot_add_a_second_account_for_one_mailbox_in_the_admin(client, staff):
    User.objects.create_user("ada@example.com")
    client.force_login(staff)
    form = {"email": fullwidth("ADA") + "@Example.com", "password1": "", "password2": ""}
    form |= {"usable_password": "false"}
    page = client.post("/admin/accounts/user/add/", form)
    assert page.status_code == 200  # the form again, with the error
    assert "already exists" in page.content.decode()
    assert User.objects.filter(email="ada@example.com").count() == 1
    client.post("/admin/accounts/user/add/", form | {"email": "Cy@Example.com"})
    assert User.objects.filter(email="cy@example.com").exists()
