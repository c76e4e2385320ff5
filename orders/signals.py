"""What `orders` tells the other apps. Every signal is sent inside the transaction that made the
change, once per real change (never for a duplicate event), after the order is saved and its
status derived (`updates.update_order`), so receivers get the final facts and can write outbox
rows and licenses atomically with the change."""

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
# order, refund (Refund), refunded_total (minor units returned in all, after this change),
# fully_refunded (bool): a refund now counts as money returned
refund_counted = Signal()
# order, refund (Refund): a refund was asked for (by staff or on the Stripe Dashboard) and Stripe
# reports it pending: the money is on its way but not yet returned (sent once per refund)
refund_pending = Signal()
# order, refund (Refund), counted (bool): staff chose licenses (refund.seats) to go with a refund
# that counts; sent once, when both are known (counted: in the change that counted it, so its
# order.refunded embed names them already; else the seats came after the refund counted)
refund_seats = Signal()
# order, refund (Refund): a refund failed or was canceled after it was asked for; the order is
# flagged (Order.refund_failed_at) until staff refund again or mark it settled
refund_failed = Signal()
# order, dispute (Dispute), change: "opened", "escalated" (an inquiry became a chargeback),
# "closed" (dispute.status is the outcome) or "appealed"
dispute_changed = Signal()
# order, mismatch (PaymentMismatch): a Checkout Session that may not pay the order said money
# moved (a session the shop did not create for it, or another amount or currency); told once
payment_mismatched = Signal()
# order, warning (FraudWarning): Stripe Radar raised an early fraud warning on the order's charge
# (sent once per warning, when first seen, whichever of its events came first)
fraud_warning_raised = Signal()
# order, review (Review), change: "opened", "closed" (review.closed_reason says how), or
# "seen_closed" (its review.closed came first: the review is already over); the order's
# `review_hold` says whether its keys are held
review_changed = Signal()
