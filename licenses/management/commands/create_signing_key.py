from django.core.management.base import BaseCommand

from licenses.certificates import create_signing_key


class Command(BaseCommand):
    help = (
        "Create the key that signs license certificates, if there is none yet (the first request"
        " that needs one also creates it). Prints its kid, never the key."
    )

    def handle(self, *args, **options) -> None:
        key, created = create_signing_key()
        state = "created" if created else "already exists"
        self.stdout.write(f"Signing key {key.kid} {state}.")
