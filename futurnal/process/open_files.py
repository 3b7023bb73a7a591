"""Room for one descriptor per connection: the soft open-file limit raised to the hard one.

Every mailbox holds a fetch connection and a watch connection or more, so a few hundred
mailboxes pass the soft limit of 1,024 descriptors most systems start a process with, and the
next connection fails with "Too many open files". The hard limit (systemd's default is 524,288;
``LimitNOFILE=`` in the unit sets it) is what the administrator allows; the soft limit is only a
guard for programs that use ``select()``, which this service does not for its connections.
"""

from __future__ import annotations

import resource

from loguru import logger

__all__ = ["UNLIMITED_TARGET", "raise_open_file_limit"]

UNLIMITED_TARGET = 1 << 20  # with no hard limit: Linux's default ceiling (fs.nr_open)


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        logger.warning("could not raise the open-file limit from {soft} to {target}: {error}; about {mailboxes} "
                       "mailboxes fit", soft=soft, target=target, error=exc, mailboxes=soft // 3)
        return soft
    return target
