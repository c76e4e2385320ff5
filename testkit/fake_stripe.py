"""A small Stripe stand-in on 127.0.0.1 for tests that go through the real `stripe` SDK.

It speaks what StripeGateway uses: form-encoded requests in, JSON objects and Stripe error bodies
out, Idempotency-Key replays, and the Events API with its filters and pagination. Every request
is recorded, and a test can make the next request(s) fail the way Stripe fails.

    def test_something(fake_stripe):  # the fixture in tests/conftest.py
        fake_stripe.fail_next("card_error", decline_code="insufficient_funds")
        ...
        assert fake_stripe.requests_to("POST", "/v1/checkout/sessions")[0].form["mode"] == "payment"
"""

import json
import operator
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from testkit.stripe_objects import CARD, example, make_event

DECLINES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
}
BOUNDS = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]  # the flat pairs as sent: {"line_items[0][quantity]": "2", ...}
    params: dict[str, Any]  # the same, nested: {"line_items": [{"quantity": "2"}], ...}


@dataclass
class Failure:
    kind: str  # "card_error", "api_error" or "timeout"
    decline_code: str = "card_declined"
    seconds: float = 2.0


@dataclass
class StripeProblem(Exception):
    status: int
    error: dict[str, Any]


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=v` pairs into {"a": {"b": [{"c": "v"}]}}, as Stripe reads them."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        *path, last = key.replace("]", "").split("[")
        node = root
        for part in path:
            node = node.setdefault(part, {})
        node[last or str(len(node))] = value  # `expand[]=x` appends
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def _not_found(kind: str, object_id: str, param: str) -> StripeProblem:
    return StripeProblem(
        404,
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": param,
            "message": f"No such {kind}: '{object_id}'",
        },
    )


def _invalid(message: str, *, param: str = "", code: str = "") -> StripeProblem:
    error = {"type": "invalid_request_error", "message": message, "param": param}
    return StripeProblem(400, {**error, "code": code} if code else error)


class FakeStripe:
    """The server's state: objects, events, recorded requests and queued failures."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.released = threading.Event()
        self.requests: list[Recorded] = []
        self.failures: deque[Failure] = deque()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.warnings: dict[str, dict[str, Any]] = {}
        self.reviews: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.delivered: set[str] = set()
        self.idempotent: dict[str, tuple[str, Answer]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeStripe":
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()  # lets hanging handlers finish
        self.server.shutdown()
        self.server.server_close()

    # What tests do.

    def fail_next(
        self, kind: str, *, times: int = 1, decline_code: str = "card_declined", seconds=2.0
    ) -> None:
        """Fail the next `times` requests. "card_error" (402) and "api_error" (500) answer before
        the request is processed, and are not remembered under its Idempotency-Key. A "timeout"
        processes the request, then holds its answer back for `seconds`: the money moved but the
        client never heard, which is what idempotency keys are for. "in_use" answers 409
        idempotency_key_in_use, as Stripe does while an earlier request with the same key is
        still being processed (not remembered either)."""
        assert kind in ("card_error", "api_error", "timeout", "in_use"), kind
        self.failures.extend(Failure(kind, decline_code, seconds) for _ in range(times))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def pay(self, session_id: str, *, last4: str = "4242") -> dict[str, Any]:
        """The buyer pays on Stripe's page: a PaymentIntent and a charge, and their events."""
        with self.lock:
            session = self.sessions[session_id]
            intent = self._intent_for(session, status="succeeded")
            charge_id = _id("ch")
            charge = example(
                "charge",
                {
                    "id": charge_id,
                    "amount": session["amount_total"],
                    "amount_captured": session["amount_total"],
                    "amount_refunded": 0,
                    "currency": session["currency"],
                    "payment_intent": intent["id"],
                    "paid": True,
                    "refunded": False,
                    "refunds": {"object": "list", "data": [], "has_more": False,
                                "url": f"/v1/charges/{charge_id}/refunds"},
                    "status": "succeeded",
                    "payment_method_details": {"type": "card", "card": {**CARD, "last4": last4}},
                    "metadata": {},
                },
            )  # fmt: skip
            self.charges[charge["id"]] = charge
            intent["latest_charge"] = charge["id"]
            session.update(
                status="complete",
                payment_status="paid",
                payment_intent=intent["id"],
                customer_details={"email": session["customer_email"]},
            )
            self._emit("payment_intent.succeeded", intent)
            self._emit("charge.succeeded", charge)
            invoice = self._invoice_for(session)
            self._emit("checkout.session.completed", session)
            if invoice:
                self._emit("invoice.finalized", invoice)
                self._emit("invoice.paid", invoice)
            return dict(session)

    def payment_link_session(
        self, *, client_reference_id: str, amount: int, currency: str, metadata=None
    ) -> dict[str, Any]:
        """A session Stripe made for a Payment Link (or a pricing table, or another integration
        on the same account), not for a request of the shop: anyone may put an order's id in a
        Payment Link's `?client_reference_id=`."""
        with self.lock:
            session = self._create_session(
                {
                    "mode": "payment",
                    "line_items": [
                        {"price_data": {"currency": currency, "unit_amount": amount}, "quantity": 1}
                    ],
                    "client_reference_id": client_reference_id,
                    "metadata": metadata or {},
                }
            )
            session["payment_link"] = _id("plink")
            return dict(session)

    def decline(self, session_id: str, *, decline_code: str = "card_declined") -> dict[str, Any]:
        with self.lock:
            intent = self._intent_for(self.sessions[session_id], status="requires_payment_method")
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": DECLINES.get(decline_code, DECLINES["card_declined"]),
            }
            return self._emit("payment_intent.payment_failed", intent)

    def raise_fraud_warning(
        self, payment_intent: str, *, fraud_type: str = "made_with_stolen_card"
    ) -> dict[str, Any]:
        """Radar's early fraud warning on the payment's charge: actionable while the charge is
        neither disputed nor refunded in full (Stripe updates it when that changes)."""
        with self.lock:
            charge = self.charges[self.intents[payment_intent]["latest_charge"]]
            warning = example(
                "radar.early_fraud_warning",
                {
                    "id": _id("issfr"),
                    "actionable": not (charge.get("disputed") or charge["refunded"]),
                    "charge": charge["id"],
                    "payment_intent": payment_intent,
                    "fraud_type": fraud_type,
                    "created": int(time.time()),
                },
            )
            self.warnings[warning["id"]] = warning
            return self._emit("radar.early_fraud_warning.created", warning)

    def open_review(self, payment_intent: str, *, opened_reason: str = "rule") -> dict[str, Any]:
        """Radar puts the payment in review (a rule, or a person on the Dashboard)."""
        with self.lock:
            review = example(
                "review",
                {
                    "id": _id("prv"),
                    "charge": self.intents[payment_intent]["latest_charge"],
                    "payment_intent": payment_intent,
                    "open": True,
                    "opened_reason": opened_reason,
                    "closed_reason": None,
                    "reason": opened_reason,
                    "created": int(time.time()),
                },
            )
            self.reviews[review["id"]] = review
            return self._emit("review.opened", review)

    def close_review(self, review_id: str, closed_reason: str = "approved") -> dict[str, Any]:
        """The review closes: approved, or refunded (as fraud), which refunds the charge first,
        as the Dashboard's "Refund" in a review does."""
        with self.lock:
            review = self.reviews[review_id]
            if closed_reason in ("refunded", "refunded_as_fraud"):
                reason = "fraudulent" if closed_reason == "refunded_as_fraud" else None
                params = {"payment_intent": review["payment_intent"]}
                self._create_refund({**params, "reason": reason} if reason else params)
            review.update(open=False, closed_reason=closed_reason, reason=closed_reason)
            return self._emit("review.closed", review)

    def emit(self, event_type: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
        with self.lock:
            return self._emit(event_type, obj, **fields)

    def mark_delivered(self, *event_ids: str) -> None:
        """Stripe counts these as delivered (to this endpoint or another one)."""
        self.delivered.update(event_ids)

    # Stripe's side.

    def _intent_for(self, session: dict[str, Any], *, status: str) -> dict[str, Any]:
        intent_id = session["payment_intent"] or _id("pi")
        session["payment_intent"] = intent_id
        if intent_id not in self.intents:
            self.intents[intent_id] = example(
                "payment_intent",
                {
                    "id": intent_id,
                    "amount": session["amount_total"],
                    "currency": session["currency"],
                    "metadata": session["_payment_intent_metadata"],
                    "last_payment_error": None,
                    "latest_charge": None,
                },
            )
        intent = self.intents[intent_id]
        intent["status"] = status
        return intent

    def _invoice_for(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """With `invoice_creation` enabled, Stripe issues a paid invoice for the paid session,
        carrying `invoice_data`'s metadata, and names it on the session."""
        creation = session.get("_invoice_creation") or {}
        if str(creation.get("enabled")).lower() != "true":
            return None
        invoice_id = _id("in")
        invoice = example(
            "invoice",
            {
                "id": invoice_id,
                "status": "paid",
                "currency": session["currency"],
                "total": session["amount_total"],
                "amount_paid": session["amount_total"],
                "customer_email": session["customer_email"],
                "metadata": (creation.get("invoice_data") or {}).get("metadata", {}),
                "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
                "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{invoice_id}/pdf",
                "livemode": False,
            },
        )
        self.invoices[invoice_id] = invoice
        session["invoice"] = invoice_id
        return invoice

    def _emit(self, event_type: str, obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
        event = make_event(event_type, _public(obj), id=_id("evt"), **fields)
        self.events.append(event)
        return event

    def handle(self, method: str, path: str, params: dict[str, Any], key: str | None) -> Answer:
        routes = [
            ("POST", r"/v1/checkout/sessions", self._create_session),
            ("GET", r"/v1/checkout/sessions/(cs_[\w]+)", self._retrieve_session),
            ("POST", r"/v1/checkout/sessions/(cs_[\w]+)/expire", self._expire_session),
            ("POST", r"/v1/refunds", self._create_refund),
            ("GET", r"/v1/events", self._list_events),
        ]
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                if method == "POST" and key:
                    return self._idempotently(key, path, params, action, match.groups())
                return self._answer(action, params, match.groups())
        raise _invalid(f"Unrecognized request URL ({method}: {path}).")

    def _idempotently(self, key, path, params, action, args) -> Answer:
        """Stripe's rule: a key replays its first answer, and only for the same request."""
        fingerprint = json.dumps([path, params], sort_keys=True)
        with self.lock:  # held throughout, so two concurrent requests with one key act once
            if key in self.idempotent:
                seen, answer = self.idempotent[key]
                if seen != fingerprint:
                    raise StripeProblem(
                        400,
                        {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with. Try using a key other "
                            f"than '{key}' if you meant to execute a different request.",
                        },
                    )
                return Answer(answer.status, answer.body, {"Idempotent-Replayed": "true"})
            answer = self._answer(action, params, args)
            self.idempotent[key] = (fingerprint, answer)
            return answer

    def _answer(self, action, params, args) -> Answer:
        try:
            with self.lock:
                return Answer(200, _public(action(params, *args)))
        except StripeProblem as problem:
            return Answer(problem.status, {"error": problem.error})

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        for required in ("mode", "line_items"):
            if required not in params:
                raise _invalid(
                    f"Missing required param: {required}.", param=required, code="parameter_missing"
                )
        items = params["line_items"]
        total = sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items)
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 24 * 3600)
        # Stripe refuses an expires_at outside 30 minutes to 24 hours from the creation.
        if not now + 30 * 60 <= expires_at <= now + 24 * 3600:
            raise _invalid(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
                param="expires_at",
            )
        session_id = _id("cs")
        ours = {
            "id": session_id,
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": total,
            "amount_total": total,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "currency_conversion": None,
            "payment_link": None,
            "currency": items[0]["price_data"]["currency"],
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "metadata": params.get("metadata", {}),
            "payment_intent": None,
            "livemode": False,
            "created": now,
            "expires_at": expires_at,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        session = example("checkout.session", ours)
        session["_payment_intent_metadata"] = params.get("payment_intent_data", {}).get(
            "metadata", {}
        )
        session["_invoice_creation"] = params.get("invoice_creation")
        session["invoice"] = None
        self.sessions[session_id] = session
        return session

    def _retrieve_session(self, params: dict[str, Any], session_id: str) -> dict[str, Any]:
        session = _find(self.sessions, session_id, "checkout.session", "session")
        expand = params.get("expand") or []
        session = dict(session)
        if session["payment_intent"] and any(e.startswith("payment_intent") for e in expand):
            intent = dict(self.intents[session["payment_intent"]])
            if "payment_intent.latest_charge" in expand and intent["latest_charge"]:
                intent["latest_charge"] = self.charges[intent["latest_charge"]]
            session["payment_intent"] = intent
        return session

    def _expire_session(self, params: dict[str, Any], session_id: str) -> dict[str, Any]:
        session = _find(self.sessions, session_id, "checkout.session", "session")
        if session["status"] != "open":
            raise _invalid(
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                param="session",
            )
        session["status"] = "expired"
        self._emit("checkout.session.expired", session)
        return session

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = _find(
            self.intents, params.get("payment_intent", ""), "payment_intent", "payment_intent"
        )
        if not intent["latest_charge"]:
            raise _invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = self.charges[intent["latest_charge"]]
        if charge.get("disputed"):
            # Stripe's refusal while a chargeback is open (error code charge_disputed).
            raise _invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount", left))
        if left == 0:
            raise _invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount > left:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                param="amount",
                code="amount_too_large",
            )
        refund = example("refund", {
            "id": _id("re"),
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        })  # fmt: skip
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge)
        for warning in self.warnings.values():
            if warning["charge"] == charge["id"] and charge["refunded"] and warning["actionable"]:
                warning["actionable"] = False  # Stripe: nothing left to act on
                self._emit("radar.early_fraud_warning.updated", warning)
        return refund

    def _list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        # Newest first, as Stripe lists them.
        events = [e for e in reversed(self.events) if self._selects(e, params)]
        if "starting_after" in params:
            ids = [e["id"] for e in events]
            if params["starting_after"] not in ids:
                raise _not_found("event", params["starting_after"], "starting_after")
            events = events[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            raise _invalid("Invalid integer: limit must be between 1 and 100.", param="limit")
        page = [{**e, "pending_webhooks": int(e["id"] not in self.delivered)} for e in events]
        return {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(events) > limit,
            "data": page[:limit],
        }

    def _selects(self, event: dict[str, Any], params: dict[str, Any]) -> bool:
        created = params.get("created") or {}
        if isinstance(created, str):
            created = {"gte": created, "lte": created}
        if set(created) - set(BOUNDS):
            raise _invalid("Invalid created: use gt, gte, lt or lte.", param="created")
        if not all(BOUNDS[op](event["created"], int(value)) for op, value in created.items()):
            return False
        delivered = str(event["id"] in self.delivered).lower()
        return params.get("delivery_success") in (None, delivered)


def _find(objects: dict[str, Any], object_id: str, kind: str, param: str) -> dict[str, Any]:
    if object_id not in objects:
        raise _not_found(kind, object_id, param)
    return objects[object_id]


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorded requests say enough

    def _serve(self) -> None:
        fake: FakeStripe = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(body if self.command == "POST" else url.query, keep_blank_values=True)
        params = nest(pairs)
        with fake.lock:
            fake.requests.append(
                Recorded(self.command, url.path, dict(self.headers.items()), dict(pairs), params)
            )
            failure = fake.failures.popleft() if fake.failures else None
        try:
            answer = self._answer(fake, url.path, params, failure)
        except Exception as bug:  # in the fake itself: say so instead of dropping the connection
            error = {"type": "api_error", "message": f"fake Stripe failed: {bug!r}"}
            answer = Answer(500, {"error": error}, {"Stripe-Should-Retry": "false"})
        if failure and failure.kind == "timeout":
            fake.released.wait(failure.seconds)
        self._send(answer)

    def _answer(self, fake, path, params, failure: Failure | None) -> Answer:
        if not (self.headers.get("Authorization") or "").startswith("Bearer sk_test_"):
            return Answer(
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "You did not provide an API key.",
                    }
                },
            )
        if failure and failure.kind == "card_error":
            message = DECLINES.get(failure.decline_code, DECLINES["card_declined"])
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": failure.decline_code,
                "message": message,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            }
            return Answer(402, {"error": error})
        if failure and failure.kind == "in_use":
            error = {
                "type": "idempotency_error",
                "code": "idempotency_key_in_use",
                "message": "There is currently another in-progress request using this "
                "Idempotent Key (that probably means you submitted twice, and the other request "
                "is still going through). Please try again later.",
            }
            return Answer(409, {"error": error})
        if failure and failure.kind == "api_error":
            error = {"type": "api_error", "message": "An unknown error occurred"}
            return Answer(500, {"error": error})
        try:
            return fake.handle(self.command, path, params, self.headers.get("Idempotency-Key"))
        except StripeProblem as problem:
            return Answer(problem.status, {"error": problem.error})

    def _send(self, answer: Answer) -> None:
        body = json.dumps(answer.body).encode()
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Request-Id": _id("req"),
            **answer.headers,
        }
        if self.headers.get("Idempotency-Key"):
            headers["Idempotency-Key"] = self.headers["Idempotency-Key"]
        try:
            self.send_response(answer.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)
