"""One mailbox, one account: the canonical form of an email address.

Accounts and orders store the canonical form, mail goes to it, and every comparison is an exact
match on it. A database's case-insensitive comparison is never used: PostgreSQL upper-cases the
dotless i (U+0131) to I and the long s (U+017F) to S, so an address at a lookalike domain (the
attacker's) would match the real one (Django's CVE-2019-19844 is the same class).

The canonical form: the domain as IDNA ASCII, lower case (UTS 46 mapping, so fullwidth or capital
letters name the same domain, and a dotless-i domain is its own `xn--` domain); the local part
NFKC-normalised and lower-cased (as the shop always lower-cased addresses). Invisible characters
(soft hyphen, zero-width space, controls) are refused rather than dropped, so what a person sees
is what the shop mails. Because the link and the keys are mailed to the canonical form, whoever
signs in to an account is whoever reads that canonical mailbox.
"""

import contextlib
import unicodedata

import idna

# Controls, format characters (soft hyphen, zero-width joiners, bidi marks), surrogates,
# private use, unassigned, and every kind of space or separator.
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}
MAX_LENGTH = 254


class InvalidAddress(ValueError):
    """An address the shop cannot mail; `words` say why, for the person who typed it."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


def canonical_email(address: str) -> str:
    """The canonical form of `address`, or InvalidAddress. Idempotent."""
    local, at, domain = address.strip().rpartition("@")
    if not (at and local and domain):
        raise InvalidAddress("Enter a valid email address.")
    local = _fold(local)
    # Checked after folding too: NFKC turns some visible characters into spaces.
    if any(unicodedata.category(char) in INVISIBLE for char in address.strip() + local):
        raise InvalidAddress("This address contains invisible characters or spaces.")
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise InvalidAddress("The domain of this address is not valid.") from None
    canonical = f"{local}@{domain.lower()}"
    if len(canonical) > MAX_LENGTH:
        raise InvalidAddress("This address is too long.")
    return canonical


def _fold(local: str) -> str:
    # NFKC on both sides of lower(): lowering can produce a decomposable sequence (İ → i + ̇).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", local).lower())


def same_mailbox(a: str, b: str) -> bool:
    """Whether two addresses are one mailbox (one account); an invalid one matches nothing."""
    try:
        return canonical_email(a) == canonical_email(b)
    except InvalidAddress:
        return False


def lookalike_warning(address: str) -> str:
    """Words for staff when an address could pass for another one (non-ASCII letters, an IDN
    domain, letters of several scripts); "" for a plain ASCII address."""
    if address.isascii() and "xn--" not in address:
        return ""
    local, _, domain = address.rpartition("@")
    shown = domain
    with contextlib.suppress(idna.IDNAError, UnicodeError):
        shown = idna.decode(domain)
    letters = sorted({char for char in local + shown if not char.isascii()})
    named = ", ".join(f"{char} ({unicodedata.name(char, 'unnamed').lower()})" for char in letters)
    words = []
    scripts = sorted(_scripts(local + shown))
    if len(scripts) > 1:
        words.append(f"mixes {' and '.join(scripts)} letters")
    if shown != domain:
        words.append(f"the domain is {shown} ({domain})")
    if named:
        words.append(f"not plain ASCII: {named}")
    return "Lookalike risk: " + "; ".join(words) + "."


def _scripts(text: str) -> set[str]:
    """The scripts of the letters in `text`, by the first word of each letter's Unicode name
    (LATIN, CYRILLIC, GREEK…): enough to tell a Cyrillic letter among Latin ones."""
    return {unicodedata.name(char, "UNKNOWN").split()[0].title() for char in text if char.isalpha()}
