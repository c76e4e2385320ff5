import pytest
from django.dispatch import Signal

from orders import signals
from orders.models import Order
from tests.factories import make_order


@pytest.fixture
def order() -> Order:
    return make_order()


@pytest.fixture
def sent() -> list[str]:
    """The name of every `orders` signal sent, in order."""
    names = {value: name for name, value in vars(signals).items() if isinstance(value, Signal)}
    calls = []

    def record(signal, sender, **kwargs):
        calls.append(names[signal])

    for signal in names:
        signal.connect(record, weak=False, dispatch_uid="test-webhook-sent")
    yield calls
    for signal in names:
        signal.disconnect(dispatch_uid="test-webhook-sent")
