"""Any mix of activate, deactivate and validate calls, refunds and disputes on one license ends
with the devices a plain sequential model of the rules says, and every answer is the model's
(hypothesis; on SQLite and on PostgreSQL, as the suite runs on either)."""

import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licenses.models import Activation
from orders.webhooks import handle_stripe_event
from testkit.stripe_objects import (
    dispute_obj,
    make_event,
    refunded_in_full,
    session_obj,
)
from tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db

LIMIT, CHURN = 2, 3
FINGERPRINTS = st.sampled_from(["fp-a", "fp-b", "fp-c", "fp-d"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("activate"), FINGERPRINTS),
        st.tuples(st.just("deactivate"), FINGERPRINTS),
        st.tuples(st.just("validate"), FINGERPRINTS),
        st.tuples(st.sampled_from(["refund", "dispute", "won", "lost"]), st.none()),
    ),
    max_size=25,
)


@dataclass
class Model:
    """The rules, one call at a time."""

    status: str = "active"
    dispute: str = ""  # "", "open", "closed"
    active: dict[str, str] = field(default_factory=dict)  # fingerprint → activation id
    given: dict[str, str] = field(default_factory=dict)  # fingerprint → the last id it got
    deactivated: int = 0

    def refusal(self) -> str:
        return {"suspended": "SUSPENDED", "revoked": "REVOKED"}.get(self.status, "")

    def activate(self, fingerprint: str) -> tuple[int, str]:
        if self.refusal():
            return 403, self.refusal()
        if fingerprint in self.active:
            return 200, "ACTIVATED"
        if len(self.active) >= LIMIT:
            return 409, "TOO_MANY_ACTIVATIONS"
        return 201, "ACTIVATED"

    def deactivate(self, fingerprint: str) -> tuple[int, str]:
        if fingerprint not in self.given:
            return 404, "NOT_FOUND"
        if self.given[fingerprint] not in self.active.values():
            return 200, "DEACTIVATED"  # already ended: nothing counted
        if self.deactivated >= CHURN:
            return 429, "TOO_MANY_DEACTIVATIONS"
        self.deactivated += 1
        del self.active[fingerprint]
        return 200, "DEACTIVATED"

    def validate(self, fingerprint: str) -> str:
        return self.refusal() or ("VALID" if fingerprint in self.active else "NOT_ACTIVATED")

    def money(self, event: str) -> bool:
        """Apply a refund or dispute step; False when it does not apply now (skipped)."""
        if event == "refund":
            self.status = "revoked"
        elif event == "dispute" and not self.dispute:
            self.dispute = "open"
            if self.status == "active":
                self.status = "suspended"
        elif event in ("won", "lost") and self.dispute == "open":
            self.dispute = "closed"
            if self.status == "suspended":
                self.status = "active" if event == "won" else "revoked"
            elif event == "lost":
                self.status = "revoked"
        else:
            return False
        if self.status == "revoked":
            self.active.clear()
        return True


def post(client, path, body):
    response = client.post(
        f"/api/licenses/{path}", json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def stripe(order, event: str) -> None:
    if event == "refund":
        handle_stripe_event(refunded_in_full(order))
    elif event == "dispute":
        handle_stripe_event(
            make_event("charge.dispute.created", dispute_obj(order, f"dp_{order.number}"))
        )
    else:
        closed = dispute_obj(order, f"dp_{order.number}", event)
        handle_stripe_event(make_event("charge.dispute.closed", closed))


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_any_mix_of_calls_ends_as_the_sequential_model_says(operations, settings):
    settings.LICENSE_DEACTIVATIONS_PER_30_DAYS = CHURN
    settings.LICENSE_VALIDATE_RATE = settings.LICENSE_VALIDATE_KEY_RATE = 10_000
    cache.clear()
    product = make_product(max_activations=LIMIT)
    order = make_order(product=product)
    handle_stripe_event(make_event("checkout.session.completed", session_obj(order)))
    license = order.licenses.get()
    client, model = Client(), Model()
    key = {"key": license.key, "product": product.slug}

    for operation, fingerprint in operations:
        if operation == "activate":
            expected = model.activate(fingerprint)
            status, answer = post(client, "activate", {**key, "fingerprint": fingerprint})
            assert (status, answer["code"]) == expected, (operation, fingerprint, model)
            if status in (200, 201):
                if status == 200:
                    assert answer["activation_id"] == model.active[fingerprint]
                model.active[fingerprint] = model.given[fingerprint] = answer["activation_id"]
        elif operation == "deactivate":
            activation_id = model.given.get(fingerprint, str(uuid.uuid4()))
            expected = model.deactivate(fingerprint)
            status, answer = post(
                client, "deactivate", {"key": license.key, "activation_id": activation_id}
            )
            assert (status, answer["code"]) == expected, (operation, fingerprint, model)
        elif operation == "validate":
            _, answer = post(client, "validate", {**key, "fingerprint": fingerprint})
            assert answer["code"] == model.validate(fingerprint), (fingerprint, model)
            assert answer["activations"]["used"] == len(model.active)
        elif model.money(operation):
            stripe(order, operation)

    active = Activation.objects.filter(license=license, deactivated_at=None)
    assert {str(a) for a in active.values_list("public_id", flat=True)} == set(
        model.active.values()
    )
    license.refresh_from_db()
    assert license.status == model.status
