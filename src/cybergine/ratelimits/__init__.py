"""Rate limits that hold across processes: their counters live in PostgreSQL, so several
web processes behind a load balancer allow a client the limit once, not once each."""
