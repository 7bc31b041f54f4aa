"""The paging checks' compact memory of a pass: ids found with their first instant, across merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xero.first_seen import NOT_SEEN, FirstSeen, id_key

START = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def test_ids_are_found_with_their_first_instant_before_and_after_merges() -> None:
    seen = FirstSeen(merge_at=7)  # merges every 7 additions: both stores are exercised
    ids = [f"inv-{number:05d}" for number in range(50)]
    for number, record_id in enumerate(ids):
        instant = None if number % 10 == 3 else START + timedelta(seconds=number, microseconds=number)
        seen.add(id_key(record_id), instant)
    assert len(seen) == 50
    found = seen.find([id_key(record_id) for record_id in [*ids, "inv-99999", "new"]])
    for number, value in enumerate(found[:50]):
        expected = None if number % 10 == 3 else START + timedelta(seconds=number, microseconds=number)
        assert value == expected, ids[number]
    assert found[50:] == [NOT_SEEN, NOT_SEEN]


def test_an_empty_map_finds_nothing() -> None:
    assert FirstSeen().find([id_key("a"), id_key("b")]) == [NOT_SEEN, NOT_SEEN]
    assert FirstSeen().find([]) == []


def test_a_key_below_or_above_every_stored_key_is_not_seen() -> None:
    seen = FirstSeen(merge_at=1)
    seen.add(10, START)
    seen.add(20, START)
    assert seen.find([5, 10, 15, 20, 25]) == [NOT_SEEN, START, NOT_SEEN, START, NOT_SEEN]
