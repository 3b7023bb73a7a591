"""Restart strategies and restart types, as in OTP's supervisor, as plain data and one function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["RestartType", "Strategy", "restart_group"]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
"""Which children restart when one dies: that one, all of them, or it and those started after it."""

RestartType = Literal["permanent", "transient", "temporary"]
"""When a child is restarted: always, only after an abnormal end, never."""


def restart_group(strategy: Strategy, start_order: Sequence[str], dead: str) -> list[str]:
    """The children to restart after ``dead`` died, in start order (``dead`` included).

    The supervisor stops the others of the group in reverse order before restarting the group in
    this order, so a child never runs without the siblings started before it:

    - ``one_for_one``: only the dead child; its siblings do not depend on it.
    - ``one_for_all``: every child; they only work together.
    - ``rest_for_one``: the dead child and every child started after it, which may depend on it.

    Raises:
        ValueError: ``dead`` is not one of ``start_order``.
    """
    position = list(start_order).index(dead)
    if strategy == "one_for_one":
        return [dead]
    if strategy == "one_for_all":
        return list(start_order)
    if strategy == "rest_for_one":
        return list(start_order[position:])
    raise ValueError(f"unknown strategy {strategy!r}")
