"""Names of Shopify's token endpoint and of the OAuth grants and token types it takes
(RFC 8693 token exchange, Shopify's offline and online token types): what the platform
sends (``tokens``) and what the simulator checks (``simulator.oauth``). Names, not
credentials."""

from __future__ import annotations

TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
REFRESH_GRANT = "refresh_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
ONLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"  # noqa: S105
