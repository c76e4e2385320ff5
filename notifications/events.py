"""The notification events, their colours, and which ones a destination gets by default."""

from django.db import models


class Event(models.TextChoices):
    CHECKOUT_STARTED = "checkout.started"
    ORDER_PENDING = "order.pending"
    PAYMENT_COMPLETED = "payment.completed"
    ORDER_COMPLETED = "order.completed"
    PAYMENT_FAILED = "payment.failed"
    ORDER_REFUNDED = "order.refunded"
    ORDER_DISPUTED = "order.disputed"
    ORDER_DISPUTE_CLOSED = "order.dispute_closed"
    ORDER_REFUND_FAILED = "order.refund_failed"
    ORDER_REFUND_PENDING = "order.refund_pending"
    LICENSE_STOCK_LOW = "license.stock_low"
    ORDER_PAYMENT_MISMATCH = "order.payment_mismatch"
    LICENSE_ACTIVATION_LIMIT_REACHED = "license.activation_limit_reached"
    ORDER_FRAUD_WARNING = "order.fraud_warning"
    TEST = "test", "test (send_test_notification)"


COLOURS = {
    Event.CHECKOUT_STARTED: 0xE67E22,
    Event.ORDER_PENDING: 0xF1C40F,
    Event.PAYMENT_COMPLETED: 0x2ECC71,
    Event.ORDER_COMPLETED: 0x2ECC71,
    Event.PAYMENT_FAILED: 0xE74C3C,
    Event.ORDER_REFUNDED: 0x95A5A6,
    Event.ORDER_DISPUTED: 0x9B59B6,
    Event.ORDER_DISPUTE_CLOSED: 0x9B59B6,
    Event.ORDER_REFUND_FAILED: 0xE74C3C,
    Event.ORDER_REFUND_PENDING: 0xBDC3C7,
    Event.LICENSE_STOCK_LOW: 0xE74C3C,
    Event.ORDER_PAYMENT_MISMATCH: 0xE74C3C,
    Event.LICENSE_ACTIVATION_LIMIT_REACHED: 0xE67E22,
    Event.ORDER_FRAUD_WARNING: 0xE74C3C,
    Event.TEST: 0x3498DB,
}

# payment.completed duplicates order.completed in the common case, so it is opt-in.
DEFAULT_EVENTS = [e.value for e in Event if e not in (Event.PAYMENT_COMPLETED, Event.TEST)]
