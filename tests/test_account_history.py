"""The status history in a buyer's words, including reasons these rules have never seen."""

from datetime import UTC, datetime

import pytest

from orders.history import failure_words, transition_words
from orders.models import OrderTransition


def move(came_from: str, to: str, reason: str = "", source: str = "evt_1") -> OrderTransition:
    return OrderTransition(
        from_status=came_from,
        to_status=to,
        reason=reason,
        source=source,
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("row", "codes", "words"),
    [
        (move("", "pending", "order placed", "checkout"), {}, "Order placed"),
        (
            move("pending", "failed", "Your card has insufficient funds."),
            {"evt_1": "insufficient_funds"},
            "Payment declined: insufficient funds",
        ),
        (
            move("pending", "failed", "Your card was declined."),
            {"evt_1": "stolen_card"},
            "Payment declined by your bank",
        ),
        (
            move("pending", "failed", "The checkout session expired."),
            {"evt_1": "expired"},
            "Checkout expired before payment",
        ),
        (
            move("pending", "failed", "The delayed payment failed."),
            {"evt_1": "async_payment_failed"},
            "Bank payment failed",
        ),
        (move("pending", "failed", "Something new."), {}, "Payment failed: Something new"),
        (
            move("pending", "failed", "Stripe did not answer.", "checkout"),
            {},
            "Payment could not start: Stripe did not answer",
        ),
        (
            move("failed", "pending", "paid again by the customer", "customer:a@example.com"),
            {},
            "You started a new payment",
        ),
        (
            move("failed", "pending", "staff retry", "staff:boss@example.com"),
            {},
            "The shop sent you a new payment link",
        ),
        (move("pending", "completed", "payment succeeded"), {}, "Payment received"),
        (
            move("failed", "completed", "payment succeeded", "staff:boss@example.com"),
            {},
            "Payment recorded by the shop",
        ),
        (move("completed", "refunded", "refunded in full"), {}, "Refunded in full"),
        (
            move("disputed", "refunded", "chargeback lost"),
            {},
            "Your bank reversed the payment (chargeback)",
        ),
        (
            move("completed", "disputed", "dispute opened: product_not_received"),
            {},
            "Payment disputed with your bank: product not received",
        ),
        (
            move("disputed", "completed", "dispute closed: won"),
            {},
            "Dispute closed: the payment stands",
        ),
        # Reasons written after these rules: still a sentence.
        (
            move("refunded", "disputed", "appeal_needs_response"),
            {},
            "Disputed: appeal needs response",
        ),
        (
            move("completed", "refunded", "refund settled by staff"),
            {},
            "Refunded: refund settled by staff",
        ),
        (move("completed", "disputed"), {}, "Disputed"),
    ],
)
def test_each_move_reads_as_words(row, codes, words):
    assert transition_words(row, codes=codes) == words


def test_a_decline_code_nobody_listed_still_reads_as_a_decline():
    assert failure_words("brand_new_decline_2027") == "Payment declined by your bank"
    assert failure_words("", "") == "Payment failed"
