"""Embeds fit Discord's limits whatever customers type: checked against the fake Discord's
validation, which refuses what Discord refuses (DESIGN, "Discord notifications")."""

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.embeds import embed_size, fallback_embed, fit, for_message, order_embed
from notifications.events import Event
from testkit.fake_discord import embed_size as discord_embed_size
from testkit.fake_discord import validation_errors, visible
from tests.factories import make_order, make_product

HOSTILE = ("@everyone 🎉👩‍👩‍👧 <@&1234> ‮ " * 400)[:10_000]

# Texts from empty to several thousand code points, emoji and combining marks included.
texts = st.builds(operator.mul, st.text(max_size=12), st.integers(0, 800))
fields = st.fixed_dictionaries({"name": texts, "value": texts, "inline": st.booleans()})
embeds = st.fixed_dictionaries(
    {"title": texts, "fields": st.lists(fields, max_size=30)},
    optional={
        "description": texts,
        "footer": st.fixed_dictionaries({"text": texts}),
        "author": st.fixed_dictionaries({"name": texts}),
    },
)


def accepted(*embeds: dict) -> bool:
    return validation_errors({"embeds": list(embeds), "allowed_mentions": {"parse": []}}) is None


@settings(max_examples=150, deadline=None)
@given(embeds)
def test_any_embed_is_fitted_into_every_discord_limit(embed):
    fitted = fit(embed)

    assert accepted(fitted)
    assert embed_size(fitted) == discord_embed_size(fitted) <= 6000


def test_fit_shortens_an_author_name_like_every_other_part():
    fitted = fit({"title": "Order", "author": {"name": "a" * 7000}})

    assert fitted["author"]["name"] == "a" * 255 + "…"
    assert accepted(fitted)


def test_fit_keeps_an_embed_within_limits_untouched():
    embed = {"title": "Order completed", "fields": [{"name": "Total", "value": "$25.00"}]}

    assert fit(embed) == embed


def test_fit_counts_code_points_so_emoji_are_not_cut_early():
    fitted = fit({"title": "🎉" * 256})

    assert fitted["title"] == "🎉" * 256


@pytest.mark.django_db
def test_an_order_embed_with_hostile_customer_text_is_accepted_and_shows_no_key():
    order = make_order(product=make_product(name=HOSTILE[:200]))
    order.email = HOSTILE  # in memory: longer than any column could hold

    embed = order_embed(Event.ORDER_COMPLETED, order, [("Name", HOSTILE), ("Reason", HOSTILE)])

    assert accepted(*for_message([embed]))  # as sent, with the default SITE_URL's link
    assert embed["title"] == f"Order completed: order {order.number}"
    assert embed["fields"][0]["name"] == "Customer"
    assert len(embed["fields"][0]["value"]) == 1024


def test_the_fallback_of_a_refused_embed_is_accepted():
    refused = {"title": "x" * 300, "color": 0xE74C3C, "url": "https://shop.example/o/1/"}

    fallback = fallback_embed(refused)

    assert accepted(fallback)
    assert "url" not in fallback
    assert "https://shop.example/o/1/" in fallback["description"]


links = st.sampled_from(
    ["http://localhost:8000", "http://shop:8000", "https://shop.example.com", "http://10.0.0.7"]
).flatmap(lambda site: st.builds(lambda n: f"{site}/mgmt/orders/{n}/", st.integers(1, 4)))
linked_embeds = st.builds(
    lambda link, description: {"title": "Order", "url": link, **description},
    links,
    st.one_of(st.just({}), st.builds(lambda text: {"description": text}, texts)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(linked_embeds, min_size=1, max_size=10))
def test_a_message_shows_every_embed_and_every_link_whatever_the_links(embeds):
    sent = for_message([fit(embed) for embed in embeds])

    assert accepted(*sent) or sum(map(embed_size, sent)) > 6000  # the worker splits those
    assert visible(sent) == sent
    for before, after in zip(embeds, sent, strict=True):
        assert after.get("url") == before["url"] or after["description"].startswith(before["url"])
