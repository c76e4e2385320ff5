"""Garbage in, a clear answer out: hypothesis throws signed webhook bodies (random bytes, any JSON,
truncated events, Stripe's own objects with a wrong type in each field a handler reads) and
validate-API bodies at the shop. Never a 500, and garbage never changes an order."""

import copy
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.event_shapes import SHAPES
from orders.models import Order, StripeEvent
from orders.stripe_events import HANDLERS
from testkit import stripe_objects as so
from testkit.signing import signed_post
from tests.factories import make_order

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
WRONG = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=300)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
)


def state(order: Order) -> tuple:
    order.refresh_from_db()
    return (
        Order.objects.filter(pk=order.pk).values().get(),
        list(order.transitions.values_list("to_status", flat=True)),
        order.refunds.count(),
        order.disputes.count(),
        order.licenses.count(),
        order.notifications.count(),
    )


def post(body: bytes):
    response = signed_post(Client(), body)
    assert response.status_code in (200, 400, 413), (response.status_code, body[:300])
    return response


def event_for(order: Order, event_type: str) -> dict:
    """A well-formed event of `event_type` for `order`, from Stripe's published objects."""
    if event_type.startswith("checkout.session."):
        obj = so.session_obj(order)
    elif event_type.startswith("payment_intent."):
        obj = so.intent_failed_obj(order, "insufficient_funds")
    elif event_type == "charge.refunded":
        obj = so.charge_obj(order, refunded=order.subtotal_cents)
    elif event_type.startswith("refund."):
        obj = so.refund_obj(order, "re_fuzz", order.subtotal_cents)
    elif event_type.startswith("radar.early_fraud_warning."):
        obj = so.fraud_warning_obj(order, "issfr_fuzz")
    elif event_type.startswith("review."):
        obj = so.review_obj(order, "prv_fuzz")
    elif event_type.startswith("invoice."):
        obj = so.invoice_obj(order)
    else:
        obj = so.dispute_obj(
            order, "dp_fuzz", "needs_response", payment_intent=so.ids(order)["payment_intent"]
        )
    return so.make_event(event_type, obj)


@FUZZ
@given(body=st.binary(max_size=3000))
def test_signed_random_bytes_are_refused_and_change_nothing(body):
    order = make_order()
    before = state(order)
    assert post(body).status_code in (400, 413)
    assert state(order) == before


@FUZZ
@given(value=ANY_JSON)
def test_signed_json_of_any_shape_never_fails_and_never_touches_an_order(value):
    order = make_order()
    before = state(order)
    post(json.dumps(value).encode())
    assert state(order) == before


@FUZZ
@given(event_type=st.sampled_from(list(HANDLERS)), cut=st.integers(min_value=1, max_value=4000))
def test_a_truncated_event_is_refused_and_changes_nothing(event_type, cut):
    order = make_order()
    body = json.dumps(event_for(order, event_type)).encode()
    before = state(order)
    response = post(body[: min(cut, len(body) - 1)])
    assert response.status_code == 400
    assert state(order) == before


def fields_read(event_type: str) -> list[str]:
    kind = {
        "checkout": "checkout.session",
        "payment": "payment_intent",
        "refund": "refund",
        "radar": "radar.early_fraud_warning",
        "review": "review",
        "invoice": "invoice",
    }
    kind = kind.get(event_type.split(".")[0]) or (
        "charge" if event_type == "charge.refunded" else "dispute"
    )
    return list(SHAPES[kind])


@st.composite
def a_wrong_field(draw):
    event_type = draw(st.sampled_from(list(HANDLERS)))
    field = draw(st.sampled_from(fields_read(event_type)))
    return event_type, field, draw(WRONG)


@FUZZ
@given(case=a_wrong_field())
def test_a_wrong_type_in_any_field_a_handler_reads_never_fails_and_never_changes_the_order(case):
    event_type, field, value = case
    order = make_order()
    event = event_for(order, event_type)
    event["data"]["object"][field] = copy.deepcopy(value)
    before = state(order)

    response = post(json.dumps(event, allow_nan=True).encode())

    if response.status_code == 400:
        assert state(order) == before  # refused: nothing stored, nothing changed
        assert not StripeEvent.objects.filter(id=event["id"]).exists()
    else:
        # Accepted: the value was one Stripe may send (None for an optional field, or a string
        # for an id), and the event was handled like any other.
        assert StripeEvent.objects.filter(id=event["id"]).exists()


@FUZZ
@given(body=st.binary(max_size=5000) | ANY_JSON.map(lambda v: json.dumps(v).encode()))
def test_the_validate_api_answers_every_body_with_400_or_an_answer(body):
    response = Client().post("/api/licenses/validate", body, content_type="application/json")
    assert response.status_code in (200, 400, 429), body[:200]
    assert set(response.json()) <= {"valid", "code", "error"}


@FUZZ
@given(key=WRONG, product=WRONG)
def test_the_validate_api_refuses_wrong_types_and_never_fails_on_odd_strings(key, product):
    response = Client().post(
        "/api/licenses/validate", {"key": key, "product": product}, content_type="application/json"
    )
    assert response.status_code in (200, 400, 429)
    if response.status_code == 200:
        assert isinstance(key, str) and isinstance(product, str)
        assert response.json()["valid"] is False
