"""The base of this service's actors: supervised, and knowing a local fault when it dies of one."""

from __future__ import annotations

import logging
from typing import Any

from futurnal.process import stage_cpu
from futurnal.storage.errors import local_fault
from futurnal.supervisors.supervised import SupervisedActor

__all__ = ["ServiceActor"]


class _LocalFaultsInOneLine(logging.Filter):
    """Pykka logs an actor's death with its traceback; a death of a local fault (a full disk) is
    no bug, and its supervisor says what to do, so its line keeps the fault and drops the trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            fault = local_fault(record.exc_info[1])
            if fault is not None:
                record.msg, record.args = f"{record.getMessage()} {fault}", None
                record.exc_info, record.exc_text = None, None
        return True


logging.getLogger("pykka").addFilter(_LocalFaultsInOneLine())


class ServiceActor(SupervisedActor):
    """A supervised actor that tells its supervisor when it died of a fault of this machine's
    (see :func:`~futurnal.storage.errors.local_fault`), so it is retried with patience."""

    def describe_local_fault(self, exception: BaseException) -> str | None:
        fault = local_fault(exception)
        return str(fault) if fault is not None else None

    if stage_cpu.enabled:  # bin/benchmark's counters: what Pykka costs around the handlers
        def on_receive(self, message: Any) -> Any:
            started = stage_cpu.clock()
            try:
                return super().on_receive(message)
            finally:
                stage_cpu.add("actors.handlers", started)

        def _actor_loop(self) -> None:
            started = stage_cpu.clock()
            try:
                super()._actor_loop()
            finally:
                stage_cpu.add("actors.threads", started)
