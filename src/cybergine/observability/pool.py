"""The database pool, counted: connections checked out now, and the checkouts that found
every connection taken (the pool at ``pool_size`` + ``max_overflow``) and waited."""

from __future__ import annotations

import time

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from cybergine.observability import metrics


class MeteredPool(AsyncAdaptedQueuePool):
    def _do_get(self) -> ConnectionPoolEntry:
        if not metrics.enabled():
            return super()._do_get()
        role = metrics.process_role()
        if self.checkedout() >= self.size() + self._max_overflow:
            started = time.perf_counter()
            record = super()._do_get()
            metrics.DB_POOL_WAIT_SECONDS.labels(role).observe(time.perf_counter() - started)
        else:
            record = super()._do_get()
        metrics.child(metrics.DB_POOL_IN_USE, role).inc()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            if metrics.enabled():
                metrics.child(metrics.DB_POOL_IN_USE, metrics.process_role()).dec()
