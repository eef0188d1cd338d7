"""Cybergine: self-hostable AI customer service on WhatsApp and web chat."""

__version__ = "0.1.0"
