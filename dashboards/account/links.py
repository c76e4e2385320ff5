"""Sign-in by emailed link, no password.

A link carries a token signed with SECRET_KEY (Django's signing, salted for this use alone): the
email, a random nonce, when it was made and where to go next. It needs no row until it is used;
then its nonce is recorded (unique), so it works once. It also stops working once the account has
signed in after the link was made (with a later link), as django-sesame's links do. A staff
account's link never works: staff sign in with a password and a code (accounts/second_factor.py).
The User is created on first sign-in, so typing an address into the form leaves no trace of it in
the database.
"""

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.addresses import InvalidAddress, canonical_email
from accounts.models import is_staff_account
from orders.gateways import is_offline
from orders.models import Order
from shop.ratelimit import hit

from .models import LoginLinkUse

log = logging.getLogger(__name__)
SALT = "dashboards.account.login-link"
INVALID = "This sign-in link is not valid: part of it may have been cut off by your email program."
USED = "This sign-in link has already been used: each link works once."
REPLACED = "This sign-in link was replaced: you have signed in since it was sent."
DISABLED = "This account cannot sign in. Reply to your order email if you think this is a mistake."
STAFF = (
    "Staff accounts do not sign in with an emailed link: sign in with your password at "
    "/admin/login/."
)


class BadLink(Exception):
    """A link that cannot sign anyone in; `words` tell its holder why, `email` (when the link is
    genuine) fills the form for a new one."""

    def __init__(self, words: str, *, email: str = "") -> None:
        super().__init__(words)
        self.words = words
        self.email = email


class Throttled(Exception):
    def __init__(self, words: str, *, retry_after: int) -> None:
        super().__init__(words)
        self.words = words
        self.retry_after = retry_after


class LinkNotSent(Exception):
    """The mail server refused or did not answer."""


@dataclass(frozen=True)
class LinkClaim:
    email: str
    nonce: str
    issued_at: float
    next_url: str


@dataclass(frozen=True)
class SentLink:
    url: str
    shown_on_page: bool


def make_link_token(*, email: str, next_url: str = "") -> str:
    payload = {
        "e": canonical_email(email),
        "n": secrets.token_urlsafe(16),
        "t": round(time.time(), 3),
        "x": next_url,
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def read_link_token(token: str) -> LinkClaim:
    """The claim of a genuine, unexpired token, or BadLink."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.ACCOUNT_LINK_MAX_AGE)
    except signing.SignatureExpired:
        minutes = math.ceil(settings.ACCOUNT_LINK_MAX_AGE / 60)
        words = f"This sign-in link has expired: links work for {minutes} minutes."
        raise BadLink(words, email=_email_of_expired(token)) from None
    except signing.BadSignature:
        raise BadLink(INVALID) from None
    try:
        claim = LinkClaim(
            email=str(data["e"]),
            nonce=str(data["n"]),
            issued_at=float(data["t"]),
            next_url=str(data.get("x") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BadLink(INVALID) from None
    # A link was mailed to the address it holds, and signs in that very mailbox's account only:
    # an address that is not canonical (a link made before addresses were) matches none.
    if not _is_canonical(claim.email):
        raise BadLink(INVALID)
    return claim


def _is_canonical(email: str) -> bool:
    try:
        return canonical_email(email) == email
    except InvalidAddress:
        return False


def _email_of_expired(token: str) -> str:
    try:  # still signed by us, only old: its email may fill the form for a new link
        return str(signing.loads(token, salt=SALT)["e"])
    except (signing.BadSignature, KeyError, TypeError):
        return ""


def check_link(token: str) -> tuple[LinkClaim, AbstractBaseUser | None]:
    """(claim, user or None) for a link that would sign in now, else BadLink. Uses nothing up."""
    claim = read_link_token(token)
    if LoginLinkUse.objects.filter(nonce=claim.nonce).exists():
        raise BadLink(USED, email=claim.email)
    user = find_user(claim.email)
    if user is not None and is_staff_account(user):
        # Whoever holds a staff link (forged with a leaked key, or made before the account
        # became staff) must not skip the password and second factor staff sign in with.
        raise BadLink(STAFF)
    if user is not None and not user.is_active:
        raise BadLink(DISABLED)
    if user is not None and user.last_login and claim.issued_at < user.last_login.timestamp():
        raise BadLink(REPLACED, email=claim.email)
    return claim, user


def use_link(token: str) -> tuple[AbstractBaseUser, LinkClaim]:
    """Spend the link: returns (user, claim), creating the user on a first sign-in. Two requests
    racing with one link: the unique nonce lets exactly one through."""
    claim, user = check_link(token)
    with transaction.atomic():
        try:
            with transaction.atomic():
                LoginLinkUse.objects.create(nonce=claim.nonce, email=claim.email)
        except IntegrityError:
            raise BadLink(USED, email=claim.email) from None
        user = user or _create_user(claim.email)
    _forget_old_uses()
    return user, claim


def find_user(email: str) -> AbstractBaseUser | None:
    """The account of `email`'s mailbox: an exact match on the canonical address, never a
    case-insensitive one (accounts.addresses says why)."""
    try:
        return get_user_model().objects.filter(email=canonical_email(email)).first()
    except InvalidAddress:
        return None


def _create_user(email: str) -> AbstractBaseUser:
    users = get_user_model().objects
    try:
        with transaction.atomic():
            return users.create_user(email)  # no password: set_password(None) makes it unusable
    except IntegrityError:  # another first sign-in of the same email won the race
        return users.get(email=email)


def _forget_old_uses() -> None:
    # A link older than its max age is refused by its signature: its use row is no longer needed.
    cutoff = timezone.now() - timedelta(seconds=settings.ACCOUNT_LINK_MAX_AGE, days=1)
    LoginLinkUse.objects.filter(used_at__lt=cutoff).delete()


def request_link(*, email: str, next_url: str, client: str) -> SentLink:
    """Email a sign-in link to `email`, whoever it belongs to: the answer must not tell whether the
    address has orders or an account. Throttled per client address and per email."""
    email = canonical_email(email)  # InvalidAddress for one the shop cannot mail
    window = settings.ACCOUNT_LINK_WINDOW
    wait = hit(
        "account-link-client", client, limit=settings.ACCOUNT_LINK_CLIENT_RATE, window=window
    )
    if wait:
        raise Throttled(_throttled("from your network", wait), retry_after=wait)
    # Per mailbox: every spelling of one address (case, fullwidth letters) counts together.
    digest = hashlib.sha256(email.encode()).hexdigest()  # cache keys: bounded, no spaces
    wait = hit("account-link-email", digest, limit=settings.ACCOUNT_LINK_EMAIL_RATE, window=window)
    if wait:
        raise Throttled(_throttled("for this address", wait), retry_after=wait)
    token = make_link_token(email=email, next_url=next_url)
    url = settings.SITE_URL + reverse("account:link", args=[token])
    user = find_user(email)
    if user is not None and is_staff_account(user):
        # A staff address gets an email saying how staff sign in, and no link: the page and the
        # limits are those of any address, and an email is sent either way (so the answer takes
        # about as long), so nobody learns the address is staff's.
        _send_staff_notice(email=email)
    else:
        _send_link(email=email, url=url)
    # Test mode shows the link on the page (for a staff address too, not to tell it apart: a
    # staff link is refused whoever opens it).
    return SentLink(url=url, shown_on_page=is_offline())


def _throttled(where: str, wait: int) -> str:
    minutes = math.ceil(wait / 60)
    later = "in a minute" if minutes <= 1 else f"in {minutes} minutes"
    return f"Too many sign-in links were asked {where}. Please try again {later}."


def _send_link(*, email: str, url: str) -> None:
    context = {
        "url": url,
        "minutes": math.ceil(settings.ACCOUNT_LINK_MAX_AGE / 60),
        # Only the mailbox's owner reads this, so it may say what the page must not.
        "has_orders": Order.objects.filter(email=email).exists(),
    }
    _send(email, "dashboards/account/link_email.txt", context)


def _send_staff_notice(*, email: str) -> None:
    context = {"login_url": settings.SITE_URL + reverse("admin:login")}
    _send(email, "dashboards/account/link_email_staff.txt", context)


def _send(email: str, template: str, context: dict) -> None:
    try:
        send_mail(
            subject="Your sign-in link",
            message=render_to_string(template, context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )
    except Exception as error:  # the mail server's problem, not the customer's
        log.warning("sign-in link not sent: %s", type(error).__name__)
        raise LinkNotSent from error
