"""Store every account's email in its canonical form (accounts.addresses).

Two accounts whose addresses share a canonical form are one mailbox: the oldest keeps the
address; a later one is deactivated under an address that cannot receive mail (`.invalid`,
RFC 2606), so it can no longer sign in, and staff still find it in the admin. An address with no
canonical form (invisible characters) is left as it is: nobody can ask for a link to it.
"""

import logging

from django.db import migrations

from accounts.addresses import InvalidAddress, canonical_email

log = logging.getLogger(__name__)


def canonicalise(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    owner, moves, duplicates = {}, {}, {}
    for user_id, email in User.objects.order_by("id").values_list("id", "email"):
        try:
            canonical = canonical_email(email)
        except InvalidAddress:
            continue
        if canonical in owner:
            log.warning("user %s shares a mailbox with user %s: deactivated", user_id, owner[canonical])
            duplicates[user_id] = f"duplicate-{user_id}@accounts.invalid"
        else:
            owner[canonical] = user_id
            if canonical != email:
                moves[user_id] = canonical
    # The duplicates first: a duplicate may hold the very address its mailbox's owner moves to.
    for user_id, email in duplicates.items():
        User.objects.filter(id=user_id).update(email=email, is_active=False)
    for user_id, email in moves.items():
        User.objects.filter(id=user_id).update(email=email)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(canonicalise, migrations.RunPython.noop)]
