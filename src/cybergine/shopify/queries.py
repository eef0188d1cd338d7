"""The GraphQL Admin API documents the app sends (API version 2026-07), kept apart from
the code that sends them.

Bulk queries follow the bulk operation rules: at least one connection, at most five,
nested at most two levels; a nested connection's objects come back as lines of their
own with ``__parentId``. The product query has three (variants, media, collections)
under ``products``.
"""

from __future__ import annotations

SHOP = """
query Shop {
  shop { name currencyCode primaryDomain { url } }
}
"""

# The catalogue, for ``bulkOperationRunQuery``. Media is asked for images only
# (``MediaImage``); ``featuredMedia`` says which one comes first.
PRODUCTS_BULK = """
{
  products {
    edges {
      node {
        id
        title
        handle
        descriptionHtml
        vendor
        productType
        tags
        status
        onlineStoreUrl
        publishedAt
        updatedAt
        options { name values }
        featuredMedia { id }
        variants {
          edges {
            node {
              id
              title
              sku
              price
              compareAtPrice
              inventoryQuantity
              inventoryPolicy
              position
              selectedOptions { name value }
            }
          }
        }
        media {
          edges {
            node {
              ... on MediaImage { id alt image { url altText } }
            }
          }
        }
        collections {
          edges { node { id handle title updatedAt } }
        }
      }
    }
  }
}
"""

BULK_OPERATION_RUN_QUERY = """
mutation BulkOperationRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION_FIELDS = """
  id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl
"""

BULK_OPERATION = (
    """
query BulkOperation($id: ID!) {
  node(id: $id) { ... on BulkOperation { """
    + BULK_OPERATION_FIELDS
    + """ } }
}
"""
)

CURRENT_BULK_OPERATION = (
    """
query CurrentBulkOperation {
  currentBulkOperation(type: QUERY) { """
    + BULK_OPERATION_FIELDS
    + """ }
}
"""
)

BULK_OPERATION_CANCEL = """
mutation BulkOperationCancel($id: ID!) {
  bulkOperationCancel(id: $id) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

# Content for the knowledge base, paged (a few hundred items: no bulk operation needed).
PAGES = """
query Pages($after: String) {
  pages(first: 100, after: $after) {
    nodes { id title handle body isPublished publishedAt updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ARTICLES = """
query Articles($after: String) {
  articles(first: 100, after: $after) {
    nodes { id title handle body isPublished publishedAt updatedAt blog { handle title } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SHOP_POLICIES = """
query ShopPolicies {
  shop { primaryDomain { url } shopPolicies { id title body type url updatedAt } }
}
"""
