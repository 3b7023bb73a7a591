from __future__ import annotations

import random

import pytest

from futurnal.mail.uidset import parse_sequence_set, to_sequence_set


def test_consecutive_uids_collapse_into_ranges() -> None:
    assert to_sequence_set([1, 2, 3, 5, 7, 8, 9, 500]) == "1:3,5,7:9,500"


def test_order_and_duplicates_do_not_matter() -> None:
    assert to_sequence_set([9, 1, 2, 2, 8, 3, 7]) == "1:3,7:9"


def test_empty_set_is_an_empty_string() -> None:
    assert to_sequence_set([]) == ""


def test_round_trip_of_random_sets() -> None:
    rng = random.Random(3)
    for _ in range(200):
        uids = sorted(set(rng.sample(range(1, 5000), rng.randint(1, 300))))
        assert parse_sequence_set(to_sequence_set(uids)) == uids


def test_uid_zero_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_sequence_set("0:4")
