"""The TLS context of every outbound HTTPS client the platform makes (model providers,
Shopify, Meta, webhooks of the simulators).

httpx builds a new context for each client it makes, loading the whole certificate store:
some 40 ms of CPU, more than a request to a nearby server costs, and clients here are made
per event loop, per shop and per delivery. One context, made on first use and shared by
every client and thread of the process, verifies exactly as each new one would.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """httpx's default: certificates verified against its store (or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when set, read once per process)."""
    return httpx.create_ssl_context()
