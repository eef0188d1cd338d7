"""The Shopify app. Auth: verifies what Shopify signs (shop domains, session tokens, query
and webhook HMACs) and trades session tokens for expiring offline tokens. Webhooks: stored,
deduplicated and processed by jobs (catalogue changes, uninstall, compliance). Sync: the
catalogue, pages and policies through the GraphQL Admin API. Billing: plans and the
subscription's status. Simulator: a stand-in Shopify for development and tests."""
