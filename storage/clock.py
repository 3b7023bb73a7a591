"""The one timestamp format of the project: UTC, to the second, ``YYYY-MM-DDTHH:MM:SSZ``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_iso", "utc_now"]


def utc_iso(moment: datetime) -> str:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> str:
    return utc_iso(datetime.now(timezone.utc))
