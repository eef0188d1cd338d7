"""Real-time delivery: conversation events fanned out to every web process through
PostgreSQL LISTEN/NOTIFY, and from there to widget sockets and agents' inboxes."""
