from __future__ import annotations

import random

import pytest

from futurnal.imap.uidset import parse_sequence_set, to_sequence_set


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


def test_uidset_set_algebra_matches_python_sets() -> None:
    from futurnal.imap.uidset import UidSet

    rng = random.Random(5)
    for _ in range(300):
        a = set(rng.sample(range(1, 400), rng.randint(0, 200)))
        b = set(rng.sample(range(1, 400), rng.randint(0, 200)))
        ua, ub = UidSet.of(a), UidSet.of(b)
        assert set(ua.difference(ub)) == a - b
        assert set(ua.union(ub)) == a | b
        assert set(ua.intersection(ub)) == a & b
        assert len(ua) == len(a)
        probe = rng.randint(0, 401)
        assert (probe in ua) == (probe in a)
        assert UidSet.parse(str(ua)) == ua


def test_a_contiguous_folder_is_one_range_whatever_its_size() -> None:
    from futurnal.imap.uidset import UidSet

    known = UidSet([(1, 1_000_000)])
    assert str(known.difference([500_000])) == "1:499999,500001:1000000"
    assert len(known) == 1_000_000 and known.max == 1_000_000
