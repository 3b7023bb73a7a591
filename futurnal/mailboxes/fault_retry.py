"""How soon a mailbox is synced again after a local fault stopped it, as the environment says."""

from __future__ import annotations

import os
from collections.abc import Mapping

from futurnal.supervisors.backoff import BackoffPolicy, fault_retry_policy

__all__ = ["FAULT_RETRY_ENV", "local_fault_policy"]

#: The first retry's delay in seconds (5 by default); tests shorten it.
FAULT_RETRY_ENV = "FUTURNAL_FAULT_RETRY_SECONDS"


def local_fault_policy(environ: Mapping[str, str] | None = None) -> BackoffPolicy:
    """Retries after a local fault (a full disk, a missing CA file): 5 s, doubling to 5 minutes,
    or from ``FUTURNAL_FAULT_RETRY_SECONDS``. Each try costs a login and a SELECT."""
    value = (os.environ if environ is None else environ).get(FAULT_RETRY_ENV, "")
    try:
        initial = float(value) if value else 5.0
    except ValueError:
        raise ValueError(f"{FAULT_RETRY_ENV}={value!r} is not a number of seconds") from None
    if initial <= 0:
        raise ValueError(f"{FAULT_RETRY_ENV} must be more than 0, got {value!r}")
    return fault_retry_policy(initial)
