"""SinkActor: the only writer of the element store."""

from __future__ import annotations

from typing import Any, Protocol

from .messages import WriteElements
from .supervised import SupervisedActor

__all__ = ["ElementSink", "SinkActor"]


class ElementSink(Protocol):
    """What a sink must do: write elements durably and idempotently (same id -> same slot).

    ``upsert_many`` returns only once every element is durable; the fetcher advances its
    watermark on that return, so a sink that buffers must flush before returning.
    """

    def upsert_many(self, elements: list[dict[str, Any]]) -> int: ...


class SinkActor(SupervisedActor):
    """Serialises every write through one thread, so the store needs no locking of its own."""

    def __init__(self, *, sink: ElementSink, child_id: str = "sink", supervisor: Any = None) -> None:
        super().__init__(child_id=child_id, supervisor=supervisor)
        self._sink = sink

    def handle(self, message: Any) -> Any:
        if isinstance(message, WriteElements):
            return self._sink.upsert_many(list(message.elements))
        return super().handle(message)
