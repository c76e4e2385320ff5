"""The README's first command, as a new user runs it: `python3 dev.py` starts the whole shop in
test mode (web server and every worker), and a delayed bank debit completes with no other action
than waiting. Runs dev.py itself on a free port, against an SQLite file of its own."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.browser import WAIT_MS, shoot

ROOT = Path(__file__).resolve().parent.parent
STARTUP = 90  # seconds: migrations and demo data on a slow machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("shop")
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "STRIPE_SECRET_KEY": "",
        "TEST_GATEWAY_DELAY": "2",
        "DISCORD_WEBHOOK_URL": "",
    }
    log = (folder / "dev.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "dev.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its web server and workers can be stopped as one group
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + STARTUP
    health = {}
    # Ready: every worker reports ok, and dev.py has printed its addresses (after the server
    # first answered, so the two can come in either order).
    while health.get("status") != "ok" or "Ctrl-C stops" not in Path(log.name).read_text():
        assert process.poll() is None, Path(log.name).read_text()
        assert time.monotonic() < deadline, (health, Path(log.name).read_text())
        time.sleep(0.5)
        try:
            health = get_json(f"{url}/healthz")
        except OSError:
            continue
    yield SimpleNamespace(url=url, log=Path(log.name), health=health)
    process.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"dev.py did not stop on Ctrl-C:\n{Path(log.name).read_text()[-2000:]}")


def test_dev_py_starts_the_shop_in_test_mode_with_every_test_mode_worker(shop):
    output = shop.log.read_text()
    assert "Payments are in TEST MODE" in output
    assert "stripe listen" not in output
    assert re.search(r"Staff login:  staff@example.com / \S{12,}", output)
    assert "Staff sign in with the password alone: the second factor is off in test mode" in output
    assert {kind: w["state"] for kind, w in shop.health["workers"].items()} == {
        "deliver_notifications": "ok",
        "send_key_emails": "ok",
        "deliver_test_events": "ok",
    }


def test_a_delayed_bank_debit_completes_by_itself_in_a_browser(shop, browser):
    from playwright.sync_api import expect

    page = browser.new_page(base_url=shop.url)
    page.set_default_timeout(WAIT_MS)
    page.goto("/")
    card = page.locator("section.card").first
    card.get_by_label("Email").fill("first.run@example.com")
    card.get_by_role("button", name="Buy Now").click()
    page.get_by_role("button", name="Bank debit that succeeds later", exact=True).click()

    status = page.locator("h1 .status")
    expect(status).to_have_text("Pending")
    # Nothing else happens here: the test-events worker that dev.py started delivers the outcome.
    expect(status).to_have_text("Completed", timeout=WAIT_MS + 10_000)
    shoot(page, "first_run_bank_debit_completed")
    page.close()
