"""The simulator's control API: what a test, a benchmark or the demo does to a simulated
shop that on Shopify a merchant or Shopify itself would do. Paths (all JSON):

- ``POST /_control/shops/{shop}`` ``{"name", "email", "currency"}``: add a shop.
- ``GET /_control/shops/{shop}``: its summary (counts, installed).
- ``POST /_control/shops/{shop}/seed``: fill it, see ``seed``.
- ``POST /_control/shops/{shop}/products`` (a REST product): create; products/create.
- ``PATCH /_control/shops/{shop}/products/{id}`` ``{"title", "body_html", "status",
  "tags", "variants": [{"id", "price", "compare_at_price", "inventory_quantity", "sku"}]}``:
  change; products/update. ``DELETE`` the same path: products/delete.
- ``POST /_control/shops/{shop}/collections`` ``{"title", "product_ids"}``, ``PATCH`` and
  ``DELETE /_control/shops/{shop}/collections/{id}``: collections/create|update|delete.
- ``PATCH /_control/shops/{shop}/pages/{id}`` ``{"title", "body_html", "published"}``.
- ``POST /_control/shops/{shop}/uninstall``: tokens revoked; app/uninstalled.
- ``POST /_control/shops/{shop}/webhooks/{topic}`` (payload fields to override): send
  customers/data_request, customers/redact, shop/redact or any topic.
- ``POST /_control/shops/{shop}/subscriptions/{id}`` ``{"status"}``: app_subscriptions/update.
- ``POST /_control/shops/{shop}/throttle`` ``{"maximum", "restore_rate", "available"}``.
- ``GET /_control/shops/{shop}/app-extensions``: what App Bridge's
  ``shopify.app.extensions()`` answers; ``POST`` ``{"block", "active"}`` switches an app
  embed on or off in the published theme, as a merchant does in the theme editor.
- ``POST /_control/shops/{shop}/primary-domain`` ``{"url"}``: the storefront's own domain
  (``shop { primaryDomain }``); null or absent: its myshopify.com address again.
- ``GET /_control/shops/{shop}/metafields``: the app-data metafields the app set
  (``metafieldsSet``) on its installation.
- ``POST /_control/faults`` ``{"status", "endpoint", "times"}``: the next requests fail.
- ``GET /_control/webhooks``: the deliveries so far (topic, shop, status, attempts, ids).
- ``POST /_control/shops/{shop}/session-token``, ``GET .../tokens``,
  ``POST .../tokens/expire`` (in ``server``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cybergine.errors import InvalidInput
from cybergine.origins import origin_of
from cybergine.shopify.simulator.generator import generate_content, generate_products
from cybergine.shopify.simulator.store import (
    Collection,
    Ids,
    Policy,
    Product,
    Shop,
    collection_to_rest,
    gid,
    handle_for,
    money,
    now,
    page_from_rest,
    policy_type,
    product_from_rest,
    product_to_rest,
)
from cybergine.shopify.simulator.webhooks import compliance_payload, shop_payload

if TYPE_CHECKING:
    from cybergine.shopify.simulator.server import ShopifySimulator

CONTROL = "/_control"
MAX_GENERATED = 200_000
# The app's theme app extension and its app embed blocks (extensions/cybergine-chat).
THEME_EXTENSION = "cybergine-chat"
THEME_BLOCKS = {"chat-embed": "Cybergine chat"}
PUBLISHED_THEME_ID = "gid://shopify/OnlineStoreTheme/1"


def seed(sim: ShopifySimulator, shop: Shop, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Fills a shop. ``payload``: ``reset`` (empty it first), ``products`` (REST products),
    ``generate`` (``{"products": n, "seed": s}``: a deterministic catalogue),
    ``content`` (true: generated pages, blog, policies), ``collections``
    (``[{"title", "handle", "product_ids"}]``), ``pages`` (REST pages), ``policies``
    (``[{"type" or "handle", "title", "body"}]``). No webhooks are sent: a seed is the
    shop as it was before the app arrived."""
    if payload.get("reset"):
        shop.clear()
    for data in payload.get("products") or []:
        shop.put_product(product_from_rest(data, sim.ids))
    generate = payload.get("generate")
    if isinstance(generate, Mapping):
        count = int(generate.get("products") or 0)
        if not 0 <= count <= MAX_GENERATED:
            raise ValueError(f"generate at most {MAX_GENERATED} products")
        generate_products(shop, sim.ids, count, seed=int(generate.get("seed") or 1))
    if payload.get("content"):
        generate_content(shop, sim.ids)
    for data in payload.get("collections") or []:
        collection = _collection(data, sim.ids)
        with shop.lock:
            shop.collections[collection.id] = collection
    for data in payload.get("pages") or []:
        page = page_from_rest(data, sim.ids)
        with shop.lock:
            shop.pages[page.id] = page
    for data in payload.get("policies") or []:
        kind = policy_type(str(data.get("type") or data.get("handle") or ""))
        with shop.lock:
            shop.policies = [p for p in shop.policies if p.type != kind]
            shop.policies.append(
                Policy(sim.ids.next(), kind, str(data.get("title") or ""), str(data.get("body")))
            )
    return summary(shop)


def summary(shop: Shop) -> dict[str, Any]:
    with shop.lock:
        return {
            "domain": shop.domain,
            "id": shop.shop_id,
            "name": shop.name,
            "email": shop.email,
            "currency": shop.currency,
            "installed": shop.installed,
            "products": len(shop.products),
            "variants": shop.variants_count(),
            "collections": len(shop.collections),
            "pages": len(shop.pages),
            "articles": len(shop.articles),
            "policies": len(shop.policies),
        }


def update_product(
    sim: ShopifySimulator, shop: Shop, product_id: int, changes: Mapping[str, Any]
) -> Product:
    """Changes a product as a merchant would in the admin, then products/update."""
    product = shop.products.get(product_id)
    if product is None:
        raise KeyError(product_id)
    stamp = now()
    with shop.lock:
        if "title" in changes:
            product.title = str(changes["title"])
        if "body_html" in changes:
            product.description_html = str(changes["body_html"] or "")
        if "status" in changes:
            product.status = str(changes["status"]).upper()
        if "tags" in changes:
            tags = changes["tags"]
            product.tags = [t.strip() for t in (tags.split(",") if isinstance(tags, str) else tags)]
        for change in changes.get("variants") or []:
            variant = next((v for v in product.variants if v.id == change.get("id")), None)
            if variant is None:
                raise KeyError(change.get("id"))
            if "price" in change:
                variant.price = money(change["price"]) or "0.00"
            if "compare_at_price" in change:
                variant.compare_at_price = money(change["compare_at_price"])
            if "inventory_quantity" in change:
                variant.inventory_quantity = int(change["inventory_quantity"])
            if "sku" in change:
                variant.sku = change["sku"]
            variant.updated_at = stamp
        product.updated_at = stamp
    sim.webhooks.send(shop, "products/update", product_to_rest(product))
    return product


def create_product(sim: ShopifySimulator, shop: Shop, data: Mapping[str, Any]) -> Product:
    product = product_from_rest(data, sim.ids)
    shop.put_product(product)
    sim.webhooks.send(shop, "products/create", product_to_rest(product))
    return product


def delete_product(sim: ShopifySimulator, shop: Shop, product_id: int) -> None:
    if shop.remove_product(product_id) is None:
        raise KeyError(product_id)
    sim.webhooks.send(shop, "products/delete", {"id": product_id})


def uninstall(sim: ShopifySimulator, shop: Shop) -> None:
    """The merchant removes the app: its tokens stop working, its installation's app-data
    metafields go with the installation (so its embeds render nothing), and
    app/uninstalled is sent."""
    sim.tokens.revoke_shop(shop.domain)
    with shop.lock:
        shop.installed = False
        shop.app_metafields.clear()
    sim.webhooks.send(shop, "app/uninstalled", shop_payload(shop))


def app_extensions(shop: Shop) -> list[dict[str, Any]]:
    """``shopify.app.extensions()``: the theme app extension with its embeds' status in the
    published theme ("active" when switched on, "available" otherwise)."""
    activations = []
    for handle, name in THEME_BLOCKS.items():
        active = shop.app_embeds.get(handle, False)
        activations.append(
            {
                "handle": handle,
                "name": name,
                "target": "body",
                "status": "active" if active else "available",
                "activations": [{"target": "body", "themeId": PUBLISHED_THEME_ID}]
                if active
                else [],
            }
        )
    return [{"handle": THEME_EXTENSION, "type": "theme_app_extension", "activations": activations}]


def _collection(data: Mapping[str, Any], ids: Ids) -> Collection:
    title = str(data.get("title") or "").strip()
    if not title:
        raise ValueError("a collection needs a title")
    return Collection(
        ids.next(),
        title,
        str(data.get("handle") or handle_for(title)),
        str(data.get("body_html") or ""),
        dict.fromkeys(int(n) for n in data.get("product_ids") or []),
    )


# -- routes ----------------------------------------------------------------------------------


def add_routes(sim: ShopifySimulator) -> None:
    add = sim.app.add_api_route
    shop_path = f"{CONTROL}/shops/{{shop}}"

    async def create_shop(request: Request, shop: str) -> Response:
        body = await _body(request)
        created = sim.add_shop(
            shop,
            name=body.get("name"),
            email=body.get("email"),
            currency=str(body.get("currency") or "EUR"),
        )
        return JSONResponse(summary(created))

    async def show_shop(shop: str) -> Response:
        return JSONResponse(summary(sim.shop(shop.lower())))

    async def seed_shop(request: Request, shop: str) -> Response:
        return JSONResponse(seed(sim, sim.add_shop(shop), await _body(request)))

    async def product_create(request: Request, shop: str) -> Response:
        product = create_product(sim, sim.shop(shop.lower()), await _body(request))
        return JSONResponse({"product": product_to_rest(product)}, status_code=201)

    async def product_change(request: Request, shop: str, number: int) -> Response:
        product = update_product(sim, sim.shop(shop.lower()), number, await _body(request))
        return JSONResponse({"product": product_to_rest(product)})

    async def product_delete(shop: str, number: int) -> Response:
        delete_product(sim, sim.shop(shop.lower()), number)
        return Response(status_code=204)

    async def collection_create(request: Request, shop: str) -> Response:
        target = sim.shop(shop.lower())
        collection = _collection(await _body(request), sim.ids)
        with target.lock:
            target.collections[collection.id] = collection
        sim.webhooks.send(target, "collections/create", collection_to_rest(collection))
        return JSONResponse({"collection": collection_to_rest(collection)}, status_code=201)

    async def collection_change(request: Request, shop: str, number: int) -> Response:
        target = sim.shop(shop.lower())
        body = await _body(request)
        collection = target.collections[number]
        with target.lock:
            collection.title = str(body.get("title") or collection.title)
            if "body_html" in body:
                collection.description_html = str(body["body_html"] or "")
            if "product_ids" in body:
                collection.product_ids = dict.fromkeys(int(n) for n in body["product_ids"])
            collection.updated_at = now()
        sim.webhooks.send(target, "collections/update", collection_to_rest(collection))
        return JSONResponse({"collection": collection_to_rest(collection)})

    async def collection_delete(shop: str, number: int) -> Response:
        target = sim.shop(shop.lower())
        with target.lock:
            target.collections.pop(number)
        body = {"id": number, "published_scope": "web"}
        body["admin_graphql_api_id"] = gid("Collection", number)
        sim.webhooks.send(target, "collections/delete", body)
        return Response(status_code=204)

    async def page_change(request: Request, shop: str, number: int) -> Response:
        target = sim.shop(shop.lower())
        body = await _body(request)
        page = target.pages[number]
        with target.lock:
            page.title = str(body.get("title") or page.title)
            if "body_html" in body:
                page.body = str(body["body_html"] or "")
            if "published" in body:
                page.published_at = now() if body["published"] else None
            page.updated_at = now()
        return Response(status_code=204)

    async def uninstall_app(shop: str) -> Response:
        uninstall(sim, sim.shop(shop.lower()))
        return Response(status_code=204)

    async def send_webhook(request: Request, shop: str, topic: str) -> Response:
        target = sim.shop(shop.lower())
        body = await _body(request)
        if topic == "app/uninstalled":
            payload: dict[str, Any] = {**shop_payload(target), **body}
        else:
            payload = compliance_payload(target, topic, body)
        sim.webhooks.send(target, topic, payload)
        return Response(status_code=202)

    async def subscription_status(request: Request, shop: str, number: int) -> Response:
        target = sim.shop(shop.lower())
        status = str((await _body(request)).get("status") or "").upper()
        sim.billing.set_status(target, target.subscriptions[number], status)
        return Response(status_code=204)

    async def throttle(request: Request, shop: str) -> Response:
        body = await _body(request)
        bucket = sim.set_bucket(
            shop.lower(),
            maximum=float(body.get("maximum") or sim.bucket_maximum),
            restore_rate=float(body.get("restore_rate") or sim.bucket_restore_rate),
            available=None if body.get("available") is None else float(body["available"]),
        )
        return JSONResponse(bucket.status())

    async def extensions(shop: str) -> Response:
        body = app_extensions(sim.shop(shop.lower()))
        return JSONResponse(body, headers={"Access-Control-Allow-Origin": "*"})

    async def switch_embed(request: Request, shop: str) -> Response:
        target = sim.shop(shop.lower())
        body = await _body(request)
        block = str(body.get("block") or "")
        if block not in THEME_BLOCKS:
            raise ValueError(f"block is one of {sorted(THEME_BLOCKS)}")
        with target.lock:
            target.app_embeds[block] = bool(body.get("active"))
        return JSONResponse(app_extensions(target))

    async def primary_domain(request: Request, shop: str) -> Response:
        target = sim.shop(shop.lower())
        url = (await _body(request)).get("url")
        if url is not None and (origin_of(str(url)) is None or origin_of(str(url)) != url):
            raise ValueError("url is an origin, like https://shop.example")
        with target.lock:
            target.primary_domain_url = url
        return Response(status_code=204)

    async def app_metafields(shop: str) -> Response:
        target = sim.shop(shop.lower())
        with target.lock:
            listed = [
                {"namespace": m.namespace, "key": m.key, "type": m.type, "value": m.value}
                for m in target.app_metafields.values()
            ]
        return JSONResponse(listed)

    async def faults(request: Request) -> Response:
        body = await _body(request)
        sim.fail_next(
            status=int(body.get("status") or 502),
            endpoint=str(body.get("endpoint") or "graphql"),
            times=int(body.get("times") or 1),
        )
        return Response(status_code=204)

    async def deliveries() -> Response:
        return JSONResponse(
            [
                {
                    "topic": d.topic,
                    "shop": d.shop,
                    "webhook_id": d.webhook_id,
                    "event_id": d.event_id,
                    "status": d.status,
                    "attempts": d.attempts,
                    "error": d.error,
                }
                for d in sim.webhooks.deliveries
            ]
        )

    add(shop_path, create_shop, methods=["POST"])
    add(shop_path, show_shop, methods=["GET"])
    add(f"{shop_path}/seed", seed_shop, methods=["POST"])
    add(f"{shop_path}/products", product_create, methods=["POST"])
    add(f"{shop_path}/products/{{number}}", product_change, methods=["PATCH"])
    add(f"{shop_path}/products/{{number}}", product_delete, methods=["DELETE"])
    add(f"{shop_path}/collections", collection_create, methods=["POST"])
    add(f"{shop_path}/collections/{{number}}", collection_change, methods=["PATCH"])
    add(f"{shop_path}/collections/{{number}}", collection_delete, methods=["DELETE"])
    add(f"{shop_path}/pages/{{number}}", page_change, methods=["PATCH"])
    add(f"{shop_path}/uninstall", uninstall_app, methods=["POST"])
    add(f"{shop_path}/webhooks/{{topic:path}}", send_webhook, methods=["POST"])
    add(f"{shop_path}/subscriptions/{{number}}", subscription_status, methods=["POST"])
    add(f"{shop_path}/throttle", throttle, methods=["POST"])
    add(f"{shop_path}/app-extensions", extensions, methods=["GET"])
    add(f"{shop_path}/app-extensions", switch_embed, methods=["POST"])
    add(f"{shop_path}/primary-domain", primary_domain, methods=["POST"])
    add(f"{shop_path}/metafields", app_metafields, methods=["GET"])
    add(f"{CONTROL}/faults", faults, methods=["POST"])
    add(f"{CONTROL}/webhooks", deliveries, methods=["GET"])
    for error, status in ((KeyError, 404), (ValueError, 422), (InvalidInput, 422)):
        sim.app.add_exception_handler(error, _handler(status))


def _handler(status: int) -> Any:
    async def handle(request: Request, error: Exception) -> Response:
        detail = error.detail if isinstance(error, InvalidInput) else str(error)
        return JSONResponse({"error": detail}, status_code=status)

    return handle


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        loaded = json.loads(raw) if raw else {}
    except ValueError as error:
        raise ValueError("the body is not JSON") from error
    if not isinstance(loaded, dict):
        raise ValueError("the body is a JSON object")
    return loaded
