from django.dispatch import Signal

# product, remaining (int), threshold (int): pool stock fell under its threshold or ran out.
# Sent inside the transaction that claimed the key.
stock_low = Signal()

# license, activation: `activation` used the license's last activation. Sent inside the
# activation's transaction, at most once a day per license.
activation_limit_reached = Signal()
