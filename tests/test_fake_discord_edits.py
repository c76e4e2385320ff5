"""The fake Discord edits messages as Discord's "Edit Webhook Message" does (tests/fake_discord.py
says what each behaviour relies on), so that compact mode is tested against it."""

import threading

import pytest
import requests

from testkit.fake_discord import FakeDiscord

BODY = {"embeds": [{"title": "Order pending"}], "allowed_mentions": {"parse": []}}
EDIT = {"embeds": [{"title": "Order completed"}], "allowed_mentions": {"parse": []}}


@pytest.fixture
def fake():
    fake = FakeDiscord(bucket_limit=5, bucket_window=0.2, channel_window=1.5).start()
    fake.auto_register = False
    fake.add_webhook("1000", "token-1000")
    yield fake
    fake.stop()


def post(fake, body=BODY, *, webhook: str = "1000", **params) -> requests.Response:
    url = f"{fake.url}/webhooks/{webhook}/token-{webhook}"
    return requests.post(url, json=body, params={"wait": "true", **params}, timeout=5)


def edit(fake, message_id: str, body=EDIT, *, webhook="1000", token="", **params):
    url = f"{fake.url}/webhooks/{webhook}/{token or f'token-{webhook}'}/messages/{message_id}"
    return requests.patch(url, json=body, params=params, timeout=5)


def test_an_edit_answers_the_message_and_the_channel_shows_it_as_edited(fake):
    message_id = post(fake).json()["id"]

    answer = edit(fake, message_id)

    assert answer.status_code == 200
    assert answer.json()["id"] == message_id
    assert answer.json()["embeds"] == EDIT["embeds"]
    [message] = fake.channel("1000")
    assert (message.id, message.embeds, message.edits) == (message_id, EDIT["embeds"], 1)
    assert [r.target for r in fake.edits()] == [message_id]
    assert len(fake.messages()) == 1  # an edit is not a new message
    assert answer.headers["X-RateLimit-Remaining"] == "3"  # the post's bucket


@pytest.mark.parametrize("case", ["made up", "deleted", "another webhook's"])
def test_an_edit_of_a_message_the_webhook_cannot_find_is_404_unknown_message(fake, case):
    fake.add_webhook("2000", "token-2000")
    message_id = post(fake, webhook="2000" if case == "another webhook's" else "1000").json()["id"]
    if case == "made up":
        message_id = "123456789012345678"
    if case == "deleted":
        fake.delete_message(message_id)

    answer = edit(fake, message_id)

    assert (answer.status_code, answer.json()["code"]) == (404, 10008)
    assert fake.edits() == []


def test_a_message_in_a_thread_is_found_only_with_its_thread_id(fake):
    fake.add_thread("1000", "555555555555555555")
    message_id = post(fake, thread_id="555555555555555555").json()["id"]

    without = edit(fake, message_id)
    within = edit(fake, message_id, thread_id="555555555555555555")

    assert (without.status_code, without.json()["code"]) == (404, 10008)
    assert within.status_code == 200
    assert within.json()["channel_id"] == "555555555555555555"


def test_an_edit_through_a_deleted_webhook_or_a_wrong_token_is_refused_as_a_post_is(fake):
    message_id = post(fake).json()["id"]

    wrong = edit(fake, message_id, token="not-the-token")
    fake.delete_webhook("1000")
    deleted = edit(fake, message_id)

    assert (wrong.status_code, wrong.json()["code"]) == (401, 50027)
    assert (deleted.status_code, deleted.json()["code"]) == (404, 10015)


def test_an_oversize_edit_is_refused_and_the_message_stays_as_it_was(fake):
    message_id = post(fake).json()["id"]

    answer = edit(fake, message_id, {"embeds": [{"description": "d" * 4097}]})

    assert (answer.status_code, answer.json()["code"]) == (400, 50035)
    error = answer.json()["errors"]["embeds"]["0"]["description"]["_errors"][0]
    assert error["code"] == "BASE_TYPE_MAX_LENGTH"
    assert fake.channel()[0].embeds == BODY["embeds"]


def test_edits_spend_the_webhooks_bucket_and_one_past_it_is_a_429_and_a_violation(fake):
    message_id = post(fake).json()["id"]

    answers = [edit(fake, message_id) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 4 + [429]
    assert answers[3].headers["X-RateLimit-Remaining"] == "0"
    assert answers[4].headers["X-RateLimit-Scope"] == "user"
    assert answers[4].json()["retry_after"] > 0
    assert fake.violations() == [fake.requests[-1]]


def test_an_hour_old_message_is_edited_three_times_in_six_seconds_then_429_code_30046(fake):
    fake.bucket_limit = 100
    message_id = post(fake).json()["id"]
    fake.age_message(message_id, 3601)

    answers = [edit(fake, message_id) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == 30046
    assert 0 < answers[3].json()["retry_after"] <= 6


def test_an_edit_while_another_edit_of_the_message_is_unanswered_is_flagged(fake):
    message_id = post(fake).json()["id"]
    fake.fail_next("slow", seconds=1.0)
    first = threading.Thread(target=edit, args=(fake, message_id))

    first.start()
    assert fake.wait_for_requests(2)
    second = edit(fake, message_id)
    first.join()
    third = edit(fake, message_id)

    assert second.status_code == third.status_code == 200
    assert [r.overlapping for r in fake.requests[1:]] == [False, True, False]
    assert fake.overlapping_edits() == [fake.requests[2]]


def test_an_edit_without_allowed_mentions_pings_as_discords_defaults_do(fake):
    message_id = post(fake).json()["id"]

    edit(fake, message_id, {"content": "@everyone"})
    edit(fake, message_id, {"content": "@everyone", "allowed_mentions": {"parse": []}})

    assert [r.pings for r in fake.edits()] == [["@everyone"], []]
