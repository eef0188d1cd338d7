"""Conversations with customers: their messages, the reply pipeline and handoff to people."""
