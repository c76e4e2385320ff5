"""What `orders` tells the other apps. Every signal is sent inside the transaction that made the
change, once per real change (never for a duplicate event), so receivers can write outbox rows and
licenses atomically with it."""

from django.dispatch import Signal

# order, transition (OrderTransition), source
order_transitioned = Signal()
# order: a pending order was created (order.attempt == 1) or retried (attempt > 1)
order_placed = Signal()
# order, session_id: a Checkout Session was created for the order
checkout_started = Signal()
# order, source: payment confirmed (paid fact set for the first time)
payment_completed = Signal()
# order, code, message, source: an attempt failed (declined, async failure, expired, Stripe error)
payment_failed = Signal()
# order, refund (Refund), created (bool), newly_succeeded (bool: it counts as refunded money
# from now on): a refund became known, changed status, or was seen succeeded
refund_changed = Signal()
# order, dispute (Dispute), created (bool): a dispute opened or moved (closed: not dispute.is_open)
dispute_changed = Signal()
