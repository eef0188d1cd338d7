"""Another organisation's data is unreachable from every route.

The check walks the app's router: every route that takes an object id is called with
organisation B's credentials and organisation A's ids and must answer 404 (not 403:
existence must not leak), and every list must show none of A's rows. A route whose id
parameter has no factory here fails the test, so new routes cannot slip past it. The
checker itself is shown to catch a deliberately unscoped route.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Annotated

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from cybergine.accounts.auth import ACCOUNT_HOLDER, Caller, authorize
from cybergine.accounts.models import ApiKey, Invitation, Membership, Role
from cybergine.accounts.permissions import Permission
from cybergine.accounts.principal import Principal
from cybergine.accounts.service import team
from cybergine.app import create_app
from cybergine.assistants import service as assistants
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant
from cybergine.catalog import service as catalog
from cybergine.catalog.models import Product
from cybergine.catalog.shape import read_product
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.conversations.models import Conversation, ConversationState, Customer, Message
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service as knowledge
from cybergine.knowledge.extract import extract
from cybergine.knowledge.models import Collection, Item
from cybergine.privacy import requests as privacy_requests
from cybergine.privacy.organisation_export.models import OrganisationExport
from cybergine.privacy.request_models import PrivacyRequest, RequestChannel, RequestKind
from cybergine.settings import Settings
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.web.access import PERMISSION_ATTRIBUTE, marks
from cybergine.web.routing import api_routes
from tests.support.browser import Browser
from tests.support.conversations import (
    make_attachment,
    make_conversation,
    make_customer,
    make_message,
    make_whatsapp_number,
)
from tests.support.factories import (
    PASSWORD,
    add_member,
    make_api_key,
    make_organisation,
    unique_email,
)
from tests.support.server import LiveServer

# Path parameters that are not object ids: single-use secrets from e-mailed links.
NOT_OBJECT_IDS = {"token"}

API_BODIES = {
    ("PATCH", "/api/v1/members/{membership_id}"): {"role": "viewer"},
    ("PATCH", "/api/v1/knowledge/documents/{document_id}"): {"text": "overwritten"},
    ("PATCH", "/api/v1/knowledge/qa/{qa_id}"): {"answer": "overwritten"},
    ("PATCH", "/api/v1/assistants/{assistant_id}"): {"name": "overwritten"},
    ("PUT", "/api/v1/catalog/products/{product_id}"): {"title": "overwritten"},
    ("PATCH", "/api/v1/channels/whatsapp/{number_id}"): {"display_phone_number": "+1 999 999"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"text": "from B"},
    ("POST", "/api/v1/assistants/{assistant_id}/preview"): {"text": "What is your secret?"},
    ("PATCH", "/api/v1/privacy/requests/{request_id}"): {"refusal_reason": "duplicate"},
    ("POST", "/api/v1/privacy/requests/{request_id}/carry-out"): {},
}
FORM_FIELDS = {
    "/team/members/{membership_id}/role": {"role": "viewer"},
    "/inbox/{conversation_id}/reply": {"text": "from B"},
    "/inbox/{conversation_id}/notes": {"text": "from B"},
    "/inbox/{conversation_id}/assign": {"user_id": ""},
    "/assistants/{assistant_id}/try": {"text": "What is your secret?"},
    # The confirmation Alpha's customer would need: a leak would really erase them.
    "/customers/{customer_id}/erase": {"confirmation": "Alpha Secret Customer"},
    "/channels/widget/{assistant_id}/origins": {"add": "https://b.example"},
    "/channels/widget/{assistant_id}/appearance": {"colour": "#ff0000"},
    "/getting-started/{assistant_id}/website": {"add": "https://b.example"},
    "/channels/whatsapp/{number_id}": {"display_phone_number": "+1 999 999"},
    "/privacy/requests/{request_id}/status": {"status": "refused", "refusal_reason": "duplicate"},
    "/privacy/requests/{request_id}/verify": {"verification": "verified", "method": "document"},
}
# Endless responses a list walk cannot read to the end; what they carry is checked where
# they are tested (the inbox's event stream: tests/conversations/test_inbox.py).
STREAMS = {"/inbox/events"}


@dataclass
class World:
    a_ids: dict[str, uuid.UUID]
    a_strings: list[str]
    b_api: httpx.Client
    b_browser: Browser
    checked: list[str] = field(default_factory=list)


async def _build(database: Database, server: LiveServer) -> World:
    alpha, alpha_owner = await make_organisation(database, name="Alpha Secret Shop")
    agent, agent_membership = await add_member(database, alpha.id, Role.AGENT)
    alpha_key = await make_api_key(database, alpha.id, Role.VIEWER)
    invitee = unique_email("alpha-invitee")
    async with database.transaction() as session:
        owner = Principal(alpha.id, Role.OWNER, user_id=alpha_owner.id, email=alpha_owner.email)
        invitation = await team.invite(
            TenantScope(session, alpha.id),
            owner,
            email=invitee,
            role=Role.AGENT,
            public_url="http://x",
        )
        api_key = (
            await session.execute(select(ApiKey).where(ApiKey.organisation_id == alpha.id))
        ).scalar_one()
        alpha_scope = TenantScope(session, alpha.id)
        alpha_file = b"Alpha Secret Shop returns: thirty days."
        document = await knowledge.upload_document(
            alpha_scope,
            data=alpha_file,
            filename="alpha.txt",
            declared_type="text/plain",
            extracted=extract(alpha_file, filename="alpha.txt", declared_type="text/plain"),
            collection="alpha-collection",
        )
        qa = await knowledge.create_qa(
            alpha_scope, question="Alpha Secret Shop question?", answer="Alpha secret answer."
        )
        (collection,) = [
            c for c in await knowledge.list_collections(alpha_scope) if c.name == "alpha-collection"
        ]
        assistant = await assistants.create_assistant(
            alpha_scope,
            owner,
            AssistantChanges(
                name="alpha-concierge",
                persona="Alpha secret persona",
                fields_set={"name", "persona"},
            ),
        )
        number = await make_whatsapp_number(
            session,
            alpha.id,
            assistant.id,
            phone_number_id="7770001112223",
            display_phone_number="+1 555 777 0101",
        )
        customer = await make_customer(
            session, alpha.id, external_id="447700900777", display_name="Alpha Secret Customer"
        )
        conversation = await make_conversation(
            session,
            alpha.id,
            customer=customer,
            assistant_id=assistant.id,
            whatsapp_number_id=number.id,
            handoff_reason="Alpha secret handoff",
        )
        message = await make_message(session, conversation, text="Alpha secret message")
        await make_attachment(session, message, filename="alpha-secret.png")
        privacy_request = await privacy_requests.open_request(
            alpha_scope,
            owner.actor,
            kind=RequestKind.RESTRICTION,
            channel=RequestChannel.EMAIL,
            customer_id=customer.id,
        )
        product = await catalog.create_product(
            alpha_scope,
            owner,
            read_product(
                {
                    "title": "Alpha Secret Product",
                    "variants": [{"price": "9.99", "sku": "ALPHA-SECRET-SKU"}],
                }
            ),
        )
        export = OrganisationExport(organisation_id=alpha.id, requested_by_user_id=alpha_owner.id)
        session.add(export)
        await session.flush()

    beta, beta_owner = await make_organisation(database, name="Beta Shop")
    beta_key = await make_api_key(database, beta.id, Role.OWNER)
    # Both have a Shopify shop: B's answers its own shop's sync, never A's.
    alpha_shop = f"alpha-secret-{uuid.uuid4().hex[:8]}.myshopify.com"
    async with database.transaction() as session:
        for organisation_id, domain in (
            (alpha.id, alpha_shop),
            (beta.id, f"beta-{uuid.uuid4().hex[:8]}.myshopify.com"),
        ):
            session.add(
                ShopifyShop(
                    organisation_id=organisation_id,
                    shop_domain=domain,
                    status=ShopStatus.INSTALLED,
                )
            )
    browser = Browser(server.url)
    assert browser.sign_in(beta_owner.email, PASSWORD).status_code == 303

    return World(
        a_ids={
            "membership_id": agent_membership.id,
            "invitation_id": invitation.id,
            "api_key_id": api_key.id,
            "document_id": document.id,
            "qa_id": qa.id,
            "collection_id": collection.id,
            "assistant_id": assistant.id,
            "number_id": number.id,
            "conversation_id": conversation.id,
            "message_id": message.id,
            "customer_id": customer.id,
            "request_id": privacy_request.id,
            "export_id": export.id,
            "product_id": product.id,
        },
        a_strings=[
            str(alpha.id),
            alpha_shop,
            "Alpha Secret Shop",
            alpha_owner.email,
            agent.email,
            invitee,
            str(agent_membership.id),
            str(invitation.id),
            api_key.prefix,
            alpha_key.split("_")[1],
            str(document.id),
            str(qa.id),
            "alpha-collection",
            "Alpha secret answer",
            str(assistant.id),
            "alpha-concierge",
            "Alpha secret persona",
            str(number.id),
            "7770001112223",
            "+1 555 777 0101",
            str(customer.id),
            "447700900777",
            "Alpha Secret Customer",
            str(conversation.id),
            "Alpha secret handoff",
            str(message.id),
            "Alpha secret message",
            str(privacy_request.id),
            str(product.id),
            "Alpha Secret Product",
            "ALPHA-SECRET-SKU",
        ],
        b_api=httpx.Client(
            base_url=server.url, timeout=15, headers={"authorization": f"Bearer {beta_key}"}
        ),
        b_browser=browser,
    )


def _is_public(route: object) -> bool:
    dependant = getattr(route, "dependant", None)
    stack = list(dependant.dependencies) if dependant else []
    while stack:
        dependency = stack.pop()
        if str(getattr(dependency.call, PERMISSION_ATTRIBUTE, "")).startswith("public:"):
            return True
        stack.extend(dependency.dependencies)
    return False


def _for_account_holder(route: object) -> bool:
    """Routes about the signed-in person's own account take no API key: B's person calls
    them with B's browser session."""
    dependant = getattr(route, "dependant", None)
    return dependant is not None and ACCOUNT_HOLDER in marks(dependant)


def _call(
    world: World, method: str, route_path: str, path: str, *, person: bool = False
) -> httpx.Response:
    if person:
        return world.b_browser.http.request(method, path, headers={"accept": "application/json"})
    if path.startswith("/api/"):
        return world.b_api.request(method, path, json=API_BODIES.get((method, route_path)))
    browser = world.b_browser
    if method == "GET":
        return browser.get(path)
    token = browser.csrf("/")
    return browser.http.request(
        method, path, data={**FORM_FIELDS.get(route_path, {}), "csrf_token": token}
    )


def cross_tenant_leaks(app: FastAPI, world: World) -> list[str]:
    leaks = []
    for route in api_routes(app.routes):
        params = re.findall(r"{(\w+)}", route.path)
        if not params or set(params) <= NOT_OBJECT_IDS or _is_public(route):
            continue
        missing = [p for p in params if p not in world.a_ids]
        if missing:
            leaks.append(f"{route.path}: no factory for {missing}; add one to this test")
            continue
        path = route.path.format(**{p: world.a_ids[p] for p in params})
        for method in sorted(route.methods - {"HEAD"}):
            response = _call(world, method, route.path, path)
            world.checked.append(f"{method} {route.path}")
            if response.status_code != 404:
                leaks.append(f"{method} {route.path}: {response.status_code}")
    return leaks


def list_leaks(app: FastAPI, world: World) -> list[str]:
    leaks = []
    for route in api_routes(app.routes):
        if (
            "GET" not in route.methods
            or "{" in route.path
            or route.path in STREAMS
            or _is_public(route)
        ):
            continue
        response = _call(world, "GET", route.path, route.path, person=_for_account_holder(route))
        world.checked.append(f"GET {route.path}")
        assert response.status_code == 200, f"{route.path}: {response.status_code}"
        shown = [s for s in world.a_strings if s in response.text]
        if shown:
            leaks.append(f"GET {route.path} shows {shown}")
    return leaks


async def _assert_alpha_untouched(database: Database, world: World) -> None:
    async with database.transaction() as session:
        membership = await session.get(Membership, world.a_ids["membership_id"])
        invitation = await session.get(Invitation, world.a_ids["invitation_id"])
        api_key = await session.get(ApiKey, world.a_ids["api_key_id"])
    assert membership is not None
    assert membership.role is Role.AGENT
    assert invitation is not None
    assert invitation.revoked_at is None
    assert api_key is not None
    assert api_key.revoked_at is None
    async with database.transaction() as session:
        document = await session.get(Item, world.a_ids["document_id"])
        qa = await session.get(Item, world.a_ids["qa_id"])
        collection = await session.get(Collection, world.a_ids["collection_id"])
        assistant = await session.get(Assistant, world.a_ids["assistant_id"])
        number = await session.get(WhatsAppNumber, world.a_ids["number_id"])
        product = await session.get(Product, world.a_ids["product_id"])
    assert product is not None
    assert product.title == "Alpha Secret Product"
    assert document is not None
    assert "overwritten" not in document.body
    assert qa is not None
    assert qa.body == "Alpha secret answer."
    assert collection is not None
    assert assistant is not None
    assert assistant.name == "alpha-concierge"
    assert number is not None
    assert number.display_phone_number == "+1 555 777 0101"
    async with database.transaction() as session:
        customer = await session.get(Customer, world.a_ids["customer_id"])
        conversation = await session.get(Conversation, world.a_ids["conversation_id"])
        messages = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == world.a_ids["conversation_id"])
        )
    assert customer is not None
    assert customer.display_name == "Alpha Secret Customer"  # not erased by Beta
    assert conversation is not None
    assert conversation.state is ConversationState.BOT  # not taken over or closed by Beta
    assert conversation.assigned_user_id is None
    assert messages == 1  # no reply, no note from Beta
    async with database.transaction() as session:
        privacy_request = await session.get(PrivacyRequest, world.a_ids["request_id"])
    assert privacy_request is not None
    assert privacy_request.status.value == "open"  # not refused, verified or done by Beta
    assert privacy_request.verification.value == "unverified"


async def test_no_route_reaches_another_organisations_objects(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings, run_worker=False)
    with LiveServer(app) as server:
        world = await _build(database, server)
        try:
            assert cross_tenant_leaks(app, world) == []
            assert list_leaks(app, world) == []
            # The walk reached the API and the dashboard, reads and writes.
            assert {
                "PATCH /api/v1/members/{membership_id}",
                "DELETE /api/v1/api-keys/{api_key_id}",
                "POST /team/members/{membership_id}/remove",
                "POST /settings/api-keys/{api_key_id}/revoke",
                "GET /api/v1/members",
                "GET /api/v1/account/export",
                "GET /api/v1/knowledge/documents/{document_id}/file",
                "DELETE /api/v1/knowledge/collections/{collection_id}",
                "PATCH /api/v1/assistants/{assistant_id}",
                "GET /api/v1/assistants",
                "PATCH /api/v1/channels/whatsapp/{number_id}",
                "DELETE /api/v1/channels/whatsapp/{number_id}",
                "GET /api/v1/channels/whatsapp",
                "GET /api/v1/conversations",
                "GET /api/v1/conversations/{conversation_id}/messages",
                "GET /api/v1/conversations/{conversation_id}/messages/{message_id}/attachment",
                "GET /api/v1/knowledge/documents",
                "GET /api/v1/customers/{customer_id}/export",
                "GET /api/v1/customers/{customer_id}/export/bundle",
                "DELETE /api/v1/customers/{customer_id}",
                "GET /team",
                "GET /audit",
                "GET /inbox",
                "GET /inbox/list",
                "GET /inbox/{conversation_id}",
                "GET /inbox/{conversation_id}/thread",
                "POST /inbox/{conversation_id}/take-over",
                "POST /inbox/{conversation_id}/reply",
                "POST /inbox/{conversation_id}/notes",
                "POST /inbox/{conversation_id}/assign",
                "POST /inbox/{conversation_id}/hand-back",
                "POST /inbox/{conversation_id}/close",
                "GET /api/v1/privacy/requests",
                "GET /api/v1/privacy/requests/{request_id}",
                "PATCH /api/v1/privacy/requests/{request_id}",
                "POST /api/v1/privacy/requests/{request_id}/carry-out",
                "DELETE /api/v1/privacy/restrictions/{customer_id}",
                "GET /privacy/requests",
                "POST /privacy/requests/{request_id}/status",
            } <= set(world.checked)
        finally:
            world.b_api.close()
            world.b_browser.close()
    await _assert_alpha_untouched(database, world)


async def test_the_check_catches_a_deliberately_unscoped_route(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings, run_worker=False)

    @app.get("/api/v1/unscoped/api-keys/{api_key_id}")
    async def leaky_get(
        api_key_id: uuid.UUID, caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)]
    ) -> dict[str, str]:
        key = await caller.session.get(ApiKey, api_key_id)  # no organisation filter
        return {"name": key.name if key else ""}

    @app.get("/api/v1/unscoped/api-keys")
    async def leaky_list(
        caller: Annotated[Caller, authorize(Permission.API_KEYS_MANAGE)],
    ) -> list[str]:
        keys = (await caller.session.execute(select(ApiKey))).scalars()
        return [key.prefix for key in keys]

    with LiveServer(app) as server:
        world = await _build(database, server)
        try:
            assert cross_tenant_leaks(app, world) == [
                "GET /api/v1/unscoped/api-keys/{api_key_id}: 200"
            ]
            (listed,) = list_leaks(app, world)
        finally:
            world.b_api.close()
            world.b_browser.close()
    assert listed.startswith("GET /api/v1/unscoped/api-keys shows")
