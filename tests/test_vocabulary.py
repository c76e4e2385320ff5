"""One vocabulary: the statuses Stripe gives refunds and disputes are the models' choices
(orders/statuses.py), and everything that sorts or checks them reads those."""

import pytest

from orders import disputes, event_shapes
from orders.models import Refund
from orders.statuses import DisputeStatus, RefundStatus


def test_every_dispute_status_has_one_stage():
    opened, appealed, closing = set(disputes.OPEN_RANK), set(disputes.APPEAL_RANK), disputes.CLOSING
    assert opened | appealed | closing == set(DisputeStatus.values)
    assert not (opened & appealed or opened & closing or appealed & closing)
    assert (
        set(DisputeStatus.values)
        >= disputes.INQUIRY | disputes.NEEDS_RESPONSE | disputes.FAVOURABLE
    )


def test_every_refund_status_has_its_rung_on_the_ladder():
    assert set(Refund.RANK) == set(RefundStatus.values)


@pytest.mark.parametrize(
    ("kind", "statuses"), [("refund", RefundStatus.values), ("dispute", DisputeStatus.values)]
)
def test_an_event_is_checked_against_the_models_statuses(kind, statuses):
    event_type = {"refund": "refund.updated", "dispute": "charge.dispute.updated"}[kind]
    for status in statuses:
        event_shapes.check_object(
            event_type, {"object": kind, "id": "x_1", "amount": 100, "status": status}
        )
    with pytest.raises(event_shapes.MalformedEvent, match="status"):
        event_shapes.check_object(
            event_type, {"object": kind, "id": "x_1", "amount": 100, "status": "reversed"}
        )
