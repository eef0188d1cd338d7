"""A shop's identity is its permanent ``{name}.myshopify.com`` domain.

Every shop domain that enters (a query parameter, a webhook header, a session token's
``dest``, a form) passes through here before it names a shop, a token or a URL we call:
an unanchored or lenient check lets ``evil.test/x.myshopify.com`` or
``shop.myshopify.com.evil.test`` through, and with it a forged shop value to token lookup.
Shopify's own rule is ``^[a-zA-Z0-9][a-zA-Z0-9-]*\\.myshopify\\.com$``; a DNS label is at
most 63 characters. Pure: no settings, no database.
"""

from __future__ import annotations

import re

from cybergine.errors import InvalidInput

SHOP_DOMAIN_SUFFIX = ".myshopify.com"
# A DNS label (RFC 1035) holds at most 63 octets.
MAX_SHOP_NAME_LENGTH = 63
_SHOP_NAME = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
_HTTPS = "https://"


def shop_domain(value: object, *, field: str = "shop") -> str:
    """``value`` as a shop domain in its one spelling (lower case), or InvalidInput naming
    ``field``. Only the bare host is accepted: no scheme, port, path, userinfo, trailing
    dot or surrounding space, and nothing outside ASCII."""
    if not isinstance(value, str) or not value:
        raise _invalid(field)
    # Checked before lower-casing: some non-ASCII letters lower-case to ASCII ones (the
    # Kelvin sign "\u212a" becomes "k"), which would let a look-alike through.
    if not value.isascii():
        raise _invalid(field)
    domain = value.lower()
    if not domain.endswith(SHOP_DOMAIN_SUFFIX):
        raise _invalid(field)
    name = domain[: -len(SHOP_DOMAIN_SUFFIX)]
    if len(name) > MAX_SHOP_NAME_LENGTH or not _SHOP_NAME.fullmatch(name):
        raise _invalid(field)
    return domain


def shop_domain_from_origin(value: object, *, field: str) -> str:
    """The shop domain of an origin such as a session token's ``dest``
    (``https://{name}.myshopify.com``, nothing after the host)."""
    if not isinstance(value, str) or not value.startswith(_HTTPS):
        raise _invalid(field)
    return shop_domain(value[len(_HTTPS) :], field=field)


def shop_origin(domain: str) -> str:
    """The origin of a shop domain that already passed ``shop_domain``."""
    return _HTTPS + domain


def _invalid(field: str) -> InvalidInput:
    return InvalidInput(
        f"{field} must be a shop's myshopify.com domain, such as example.myshopify.com.",
        field=field,
    )
