from django.dispatch import Signal

# product, remaining (int), threshold (int): pool stock fell under its threshold or ran out.
# Sent inside the transaction that claimed the key.
stock_low = Signal()
