"""Getting an organisation started: the overview's checklist, read from real state."""
