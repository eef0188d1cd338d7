"""The database pool, counted: connections checked out now, and the checkouts that found
every connection taken (the pool at ``pool_size`` + ``max_overflow``) and waited."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from cybergine.observability import metrics


class MeteredPool(AsyncAdaptedQueuePool):
    # Logs under SQLAlchemy's own name for the pool it extends, which SQLAlchemy keeps at
    # WARNING: under this module's name its INFO lines ("Pool disposed") reached stdout.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"
    _role = ""
    _in_use: Any = None  # the gauge's child for this process' role, looked up once

    def _gauge(self) -> Any:
        role = metrics.process_role()
        if role != self._role:
            self._role, self._in_use = role, metrics.DB_POOL_IN_USE.labels(role)
        return self._in_use

    def _do_get(self) -> ConnectionPoolEntry:
        if not metrics.enabled():
            return super()._do_get()
        if self.checkedout() >= self.size() + self._max_overflow:
            started = time.perf_counter()
            record = super()._do_get()
            elapsed = time.perf_counter() - started
            metrics.DB_POOL_WAIT_SECONDS.labels(metrics.process_role()).observe(elapsed)
        else:
            record = super()._do_get()
        self._gauge().inc()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            if metrics.enabled():
                self._gauge().dec()
