"""What the tests and the benchmarks both use to play Stripe's and Discord's part: Stripe-shaped
objects built from Stripe's own examples (stripe_objects.py, stripe_fixtures.json), signed as
Stripe signs them (signing.py), fake Stripe and Discord servers, and whole order lifecycles told
as Stripe events. It imports the shop's code but nothing from tests/, and nothing of pytest."""
