"""The one timestamp format of the project: UTC, to the second, ``YYYY-MM-DDTHH:MM:SSZ``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_utc", "utc_iso", "utc_now"]

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_iso(moment: datetime) -> str:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_FORMAT)


def utc_now() -> str:
    return utc_iso(datetime.now(UTC))


def parse_utc(stamp: str) -> datetime:
    """The aware datetime of a stamp written by :func:`utc_iso`."""
    return datetime.strptime(stamp, _FORMAT).replace(tzinfo=UTC)
