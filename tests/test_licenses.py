from datetime import UTC, datetime
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from audit.commands import Refused
from licenses import commands as license_commands
from licenses.emails import send_key_emails
from licenses.keys import CROCKFORD, generate_key, hash_key
from licenses.models import KeyEmail, License, PoolKey
from licenses.pool import import_keys, parse_keys
from licenses.signals import stock_low
from orders.models import LicenseKind
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import dispute_obj, make_event, refund_obj, session_obj
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db(transaction=True)


def deliver(event_type, obj):
    return handle_stripe_event(make_event(event_type, obj))


def pay(order):
    event = deliver("checkout.session.completed", session_obj(order))
    send_key_emails()  # what the worker does
    return event


def statuses(order):
    return sorted(order.licenses.values_list("status", flat=True))


@pytest.fixture
def alerts():
    seen = []

    def receiver(sender, product, remaining, threshold, **kwargs):
        seen.append((product.slug, remaining, threshold))

    stock_low.connect(receiver, dispatch_uid="test-alerts")
    yield seen
    stock_low.disconnect(dispatch_uid="test-alerts")


def test_a_generated_key_has_25_crockford_characters_in_5_groups_after_the_prefix():
    key = generate_key("psp")
    prefix, *groups = key.split("-")
    assert prefix == "PSP"
    assert [len(g) for g in groups] == [5] * 5
    assert set("".join(groups)) <= set(CROCKFORD)
    assert generate_key() != generate_key()


def test_the_key_hash_ignores_case_spaces_and_dashes_but_not_the_key():
    assert hash_key("abcd-efgh") == hash_key(" ABCD EFGH ")
    assert hash_key("ABCD-EFGH") != hash_key("ABCD-EFGJ")
    assert "ABCD" not in hash_key("ABCD-EFGH")


def test_a_completed_order_gets_one_active_license_per_unit_and_an_email_with_the_keys():
    order = make_order(product=make_product(license_prefix="TW"), quantity=3)
    pay(order)
    licenses = list(order.licenses.all())
    assert [lic.status for lic in licenses] == ["active"] * 3
    assert len({lic.key for lic in licenses}) == 3
    assert all(lic.key.startswith("TW-") and lic.key_hash == hash_key(lic.key) for lic in licenses)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [order.email]
    assert all(lic.key in mail.outbox[0].body for lic in licenses)


def test_a_product_without_license_keys_issues_none_and_the_buyer_gets_a_receipt():
    order = make_order(product=make_product(name="One hour of support", license_kind="none"))
    pay(order)
    send_key_emails()
    assert order.licenses.count() == 0
    [email] = mail.outbox
    assert email.to == [order.email]
    assert email.subject == f"Your receipt for order {order.number}"
    assert "One hour of support × 1: $25.00" in email.body
    assert "key" not in email.body.lower()


def test_duplicate_and_replayed_events_issue_nothing_twice():
    order = make_order()
    event = make_event("checkout.session.completed", session_obj(order))
    handle_stripe_event(event)
    handle_stripe_event(event)
    deliver("checkout.session.completed", session_obj(order))  # same fact, another event id
    assert order.licenses.count() == 1
    assert KeyEmail.objects.filter(order=order).count() == 1


def test_a_refund_revokes_the_licenses_for_good():
    order = make_order(quantity=2)
    pay(order)
    deliver("refund.created", refund_obj(order, "re_1", 5000))
    assert statuses(order) == ["revoked", "revoked"]
    assert set(order.licenses.values_list("reason", flat=True)) == {"refund"}


def test_a_dispute_suspends_and_winning_it_reinstates():
    order = make_order()
    pay(order)
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    license = order.licenses.get()
    assert (license.status, license.reason, license.dispute_id) == ("suspended", "dispute", "dp_1")
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="won"))
    license.refresh_from_db()
    assert (license.status, license.reason, license.dispute_id) == ("active", "", "")


def test_a_lost_dispute_revokes_with_the_chargeback_reason():
    order = make_order()
    pay(order)
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="lost"))
    license = order.licenses.get()
    assert (license.status, license.reason) == ("revoked", "chargeback")


def test_a_won_dispute_never_lifts_a_staff_suspension(staff):
    order = make_order(quantity=2)
    pay(order)
    first, second = order.licenses.all()
    license_commands.suspend.run(first, by=staff)
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="won"))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.reason) == ("suspended", "staff")
    assert second.status == "active"
    license_commands.reinstate.run(first, by=staff)
    first.refresh_from_db()
    assert (first.status, first.changed_by) == ("active", staff)


def test_a_revoked_license_stays_revoked(staff):
    order = make_order()
    pay(order)
    deliver("refund.created", refund_obj(order, "re_1", 2500))
    license = order.licenses.get()
    with pytest.raises(Refused, match="revoked"):
        license_commands.suspend.run(license, by=staff)
    with pytest.raises(Refused, match="Only a suspended"):
        license_commands.reinstate.run(license, by=staff)
    assert License.objects.get(pk=license.pk).status == "revoked"


def test_a_dispute_before_the_payment_event_ends_as_in_order():
    order = make_order()
    deliver("charge.dispute.created", dispute_obj(order, "dp_1"))
    pay(order)
    deliver("charge.dispute.closed", dispute_obj(order, "dp_1", status="won"))
    order.refresh_from_db()
    assert order.status == "completed"
    assert statuses(order) == ["active"]
    assert KeyEmail.objects.filter(order=order, kind="keys").count() == 1


def test_a_refund_before_the_payment_event_records_revoked_licenses_without_spending_keys():
    product = make_product(license_kind=LicenseKind.POOL)
    import_keys(product, ["KEY-1"])
    order = make_order(product=product)
    deliver("refund.created", refund_obj(order, "re_1", 2500))
    pay(order)
    order.refresh_from_db()
    assert order.status == "refunded"
    license = order.licenses.get()
    assert (license.status, license.key) == ("revoked", "")
    assert PoolKey.objects.filter(claimed_at=None).count() == 1
    # No keys email: only the refund is told.
    assert [message.subject for message in mail.outbox] == [
        f"Refund of $25.00 for order {order.number}"
    ]


def test_pool_keys_are_claimed_oldest_first_and_never_twice():
    product = make_product(license_kind=LicenseKind.POOL)
    assert import_keys(product, ["AAA-1", "BBB-2", "CCC-3"]) == (3, 0)
    order = make_order(product=product, quantity=2)
    pay(order)
    assert sorted(order.licenses.values_list("key", flat=True)) == ["AAA-1", "BBB-2"]
    assert PoolKey.objects.filter(claimed_at=None).get().key == "CCC-3"


def test_an_empty_pool_leaves_licenses_pending_and_an_import_fills_them_oldest_first(alerts):
    product = make_product(license_kind=LicenseKind.POOL, stock_alert_threshold=2)
    first, second = make_order(product=product), make_order(product=product, quantity=2)
    pay(first)
    pay(second)
    first.refresh_from_db()
    assert first.status == "completed"
    assert statuses(first) == ["pending"]
    assert alerts == [(product.slug, 0, 2)] * 2

    assert import_keys(product, ["K-1", "K-2"]) == (2, 0)
    send_key_emails()
    assert first.licenses.get().key == "K-1"
    assert statuses(second) == ["active", "pending"]
    assert import_keys(product, ["K-3"]) == (1, 0)
    send_key_emails()
    assert statuses(second) == ["active", "active"]
    # The completion email said the keys were on their way; each key sent another.
    assert [m.to for m in mail.outbox].count([second.email]) == 3
    assert "on its way" in mail.outbox[1].body


def test_stock_low_is_raised_once_when_stock_falls_under_the_threshold(alerts):
    product = make_product(license_kind=LicenseKind.POOL, stock_alert_threshold=2)
    import_keys(product, ["K-1", "K-2", "K-3", "K-4"])
    pay(make_order(product=product))
    assert alerts == []
    pay(make_order(product=product, quantity=2))
    assert alerts == [(product.slug, 1, 2)]
    pay(make_order(product=product))
    assert alerts == [(product.slug, 1, 2)]


def test_import_skips_duplicates_in_the_file_and_in_the_pool():
    product = make_product(license_kind=LicenseKind.POOL)
    assert import_keys(product, ["AAAA-1111", "aaaa 1111", "BBBB-2222", ""]) == (2, 2)
    assert import_keys(product, ["BBBB-2222", "CCCC-3333"]) == (1, 1)
    assert PoolKey.objects.count() == 3


def test_parse_keys_reads_text_and_csv_files():
    assert parse_keys(b"A-1\nB-2\n\n") == ["A-1", "B-2"]
    assert parse_keys(b"\xef\xbb\xbfkey,note\nA-1,first\nB-2,second\n") == ["A-1", "B-2"]


def test_the_import_command_counts_what_it_imported_and_skipped(tmp_path, capsys):
    product = make_product(slug="starfall", license_kind=LicenseKind.POOL)
    path = tmp_path / "keys.txt"
    path.write_text("X-1\nX-2\nX-1\n")
    call_command("import_license_keys", "starfall", str(path))
    assert "Imported 2 key(s), skipped 1" in capsys.readouterr().out
    assert product.pool_keys.count() == 2


def test_the_import_command_refuses_a_product_without_a_pool(tmp_path):
    make_product(slug="tunewright")
    path = tmp_path / "keys.txt"
    path.write_text("X-1\n")
    with pytest.raises(Exception, match="does not use pool keys"):
        call_command("import_license_keys", "tunewright", str(path))


def test_the_key_email_is_sent_by_the_worker_not_by_the_webhook():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    assert mail.outbox == []
    call_command("send_key_emails", "--once")
    assert mail.outbox[0].subject == f"Your license keys for order {order.number}"
    assert call_command("send_key_emails", "--once") is None
    assert len(mail.outbox) == 1


def test_a_failed_key_email_is_kept_and_sent_by_the_worker(settings):
    settings.EMAIL_BACKEND = "tests.test_licenses.BrokenBackend"
    order = make_order()
    pay(order)
    email = KeyEmail.objects.get(order=order)
    assert (email.sent_at, email.attempts) == (None, 1)
    assert "SMTPServerDisconnected" in email.last_error
    assert order.licenses.get().key not in email.last_error

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    KeyEmail.objects.update(next_attempt_at=None)
    assert send_key_emails() == 1
    assert len(mail.outbox) == 1


def test_staff_can_resend_the_keys(staff):
    order = make_order()
    pay(order)
    license_commands.resend_order_keys.run(order, by=staff)
    assert len(mail.outbox) == 1
    assert send_key_emails() == 1
    assert len(mail.outbox) == 2
    assert KeyEmail.objects.filter(order=order, requested_by=staff).exists()


def test_resending_keys_of_an_order_without_keys_is_refused(staff):
    with pytest.raises(Refused, match="no keys"):
        license_commands.resend_order_keys.run(make_order(), by=staff)


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        import smtplib

        raise smtplib.SMTPServerDisconnected("connection lost")


def test_a_worker_that_dies_while_sending_costs_a_retry_not_the_email():
    order = make_order()
    deliver("checkout.session.completed", session_obj(order))
    email = KeyEmail.objects.get(order=order)
    KeyEmail.objects.filter(pk=email.pk).update(attempts=9)  # one attempt left
    # The worker dies while the mail server has the message.
    killed = mock.patch("django.core.mail.EmailMessage.send", side_effect=SystemExit)
    with killed, pytest.raises(SystemExit):
        send_key_emails()
    KeyEmail.objects.update(next_attempt_at=None)  # its lease ran out
    assert send_key_emails() == 1
    assert mail.outbox[0].to == [order.email]


def test_a_license_that_waited_for_stock_expires_its_days_after_it_got_its_key():
    """A year's license sold while the pool was empty is a year of use: the days it waited for
    a key are not taken from it (its terms are still those of the day it was sold)."""
    product = make_product(license_kind=LicenseKind.POOL, license_days=365)
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        order = make_order(product=product)
        pay(order)
    license = order.licenses.get()
    assert license.status == "pending"
    assert license.expires_at == datetime(
        2027, 3, 1, 12, tzinfo=UTC
    )  # a year from the sale, so far

    product.license_days = 30  # edited later: the sold license keeps its year
    product.save()
    with time_machine.travel("2026-03-11 12:00Z", tick=False):
        import_keys(product, ["KEY-1"])
    license.refresh_from_db()
    assert license.status == "active"
    assert license.expires_at == datetime(2027, 3, 11, 12, tzinfo=UTC)


def test_a_license_keyed_at_once_expires_its_days_after_the_payment():
    product = make_product(license_kind=LicenseKind.POOL, license_days=30)
    import_keys(product, ["KEY-1"])
    with time_machine.travel("2026-03-01 12:00Z", tick=False):
        order = make_order(product=product)
        pay(order)
    assert order.licenses.get().expires_at == datetime(2026, 3, 31, 12, tzinfo=UTC)
