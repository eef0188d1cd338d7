"""`cybergine demo`: seed a demo shop — an owner, an assistant with a small FAQ knowledge
base, a WhatsApp number served by the local Graph API simulator
(``cybergine serve --whatsapp-simulator``) and the Shopify demo shop of the local Shopify
simulator (``cybergine serve --shopify-simulator``), which connects and syncs it.
Idempotent: each piece is created only when it is missing, so running it again changes
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.accounts.models import Membership, Organisation, Role
from cybergine.accounts.principal import Principal
from cybergine.accounts.service import users
from cybergine.accounts.service.organisations import create_organisation
from cybergine.assistants.changes import AssistantChanges
from cybergine.assistants.models import Assistant
from cybergine.assistants.service import create_assistant
from cybergine.channels.whatsapp.models import WhatsAppNumber
from cybergine.channels.whatsapp.sandbox import (
    SANDBOX_ACCESS_TOKEN,
    SANDBOX_DISPLAY_PHONE_NUMBER,
    SANDBOX_PHONE_NUMBER_ID,
)
from cybergine.channels.whatsapp.service import NumberChanges, create_number
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge.models import Item
from cybergine.knowledge.service import create_qa
from cybergine.shopify import billing, plans
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.shop_domains import shop_origin
from cybergine.shopify.simulator import DEMO_SHOP

DEMO_ORGANISATION_NAME = "Demo Shop"
DEMO_OWNER_EMAIL = "demo@cybergine.example"
# Printed by `make run`: the demo is for a local machine, never for a public server.
DEMO_OWNER_PASSWORD = "demo-password"  # noqa: S105
DEMO_ASSISTANT_NAME = "Mia"
# The demo shop's WhatsApp number is the one the sandbox's simulator plays
# (``cybergine serve --whatsapp-simulator``). Meta's ids are digits; reserved for the demo.
DEMO_PHONE_NUMBER_ID = SANDBOX_PHONE_NUMBER_ID
DEMO_WABA_ID = "100000000000002"
DEMO_DISPLAY_PHONE_NUMBER = SANDBOX_DISPLAY_PHONE_NUMBER
DEMO_ACCESS_TOKEN = SANDBOX_ACCESS_TOKEN
# The demo shop's plan, large enough for the demo's history.
DEMO_PLAN = plans.STARTER

DEMO_FAQ = (
    (
        "What is your return policy?",
        "You can return any item within 30 days of delivery for a full refund. Items must be "
        "unworn, with their tags. Start a return from your order page; the label is free.",
    ),
    (
        "How long does shipping take?",
        "Orders ship within 2 business days. Delivery takes 3 to 5 business days in the EU "
        "and 7 to 10 days elsewhere. Shipping is free over 50 EUR.",
    ),
    (
        "How can I track my order?",
        "Once your order ships we e-mail you a tracking link. You can also find it under "
        "Orders in your account.",
    ),
    (
        "Which payment methods do you accept?",
        "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and Google Pay.",
    ),
    (
        "How do I find my size?",
        "Each product page has a size chart. Our sneakers run true to size; if you are "
        "between two sizes, take the larger one.",
    ),
    (
        "Do your products have a warranty?",
        "Every product has a 2-year warranty against manufacturing defects. Write to us with "
        "your order number and a photo of the defect.",
    ),
    (
        "Can I change or cancel my order?",
        "You can change or cancel an order until it ships, usually within 24 hours. Ask us "
        "here and we will do it for you.",
    ),
    (
        "When is your customer service open?",
        "Our team answers Monday to Friday, 9:00 to 18:00 Paris time. The assistant answers "
        "at any time.",
    ),
)


async def find_demo_organisation(
    session: AsyncSession, owner_id: uuid.UUID | None = None
) -> Organisation | None:
    """The demo organisation, by its own identity: the one the demo owner owns that holds
    the demo WhatsApp number, else the first the demo owner owns under the demo's name.
    Never the demo account's first membership: that account may have joined other
    organisations since (invited to a real shop), and the demo must not write into them.
    """
    if owner_id is None:
        owner = await users.find_user_by_email(session, DEMO_OWNER_EMAIL)
        if owner is None:
            return None
        owner_id = owner.id
    demo_number = (
        select(WhatsAppNumber.id)
        .where(
            WhatsAppNumber.organisation_id == Organisation.id,
            WhatsAppNumber.phone_number_id == DEMO_PHONE_NUMBER_ID,
        )
        .exists()
    )
    return await session.scalar(
        select(Organisation)
        .join(Membership, Membership.organisation_id == Organisation.id)
        .where(
            Membership.user_id == owner_id,
            Membership.role == Role.OWNER,
            or_(demo_number, Organisation.name == DEMO_ORGANISATION_NAME),
        )
        .order_by(demo_number.desc(), Organisation.created_at, Organisation.id)
        .limit(1)
    )


@dataclass(frozen=True)
class DemoSeed:
    organisation_id: str
    created: bool


async def seed_demo(session: AsyncSession) -> DemoSeed:
    owner = await users.find_user_by_email(session, DEMO_OWNER_EMAIL)
    created = owner is None
    if owner is None:
        owner, organisation = await users.sign_up(
            session,
            email=DEMO_OWNER_EMAIL,
            name="Dana Demo",
            password=DEMO_OWNER_PASSWORD,
            organisation_name=DEMO_ORGANISATION_NAME,
        )
    else:
        found = await find_demo_organisation(session, owner.id)
        if found is None:
            created = True
            organisation = await create_organisation(session, name=DEMO_ORGANISATION_NAME)
            session.add(
                Membership(organisation_id=organisation.id, user_id=owner.id, role=Role.OWNER)
            )
            await session.flush()
        else:
            organisation = found
    scope = TenantScope(session, organisation.id)
    caller = Principal(organisation.id, Role.OWNER, user_id=owner.id, email=owner.email)

    assistant = (
        await session.execute(scope.select(Assistant).where(Assistant.name == DEMO_ASSISTANT_NAME))
    ).scalar_one_or_none()
    if assistant is None:
        created = True
        assistant = await create_assistant(
            scope,
            caller,
            AssistantChanges(
                name=DEMO_ASSISTANT_NAME,
                persona="Mia, the friendly assistant of the Demo Shop, a small sneaker store.",
                instructions="Answer briefly. Offer a person for anything about a specific order.",
                greeting="Hi! I'm Mia, the Demo Shop's assistant. How can I help?",
                # Mia answers on the simulated demo shop's storefront too: she is the shop's
                # storefront assistant, whose key the app metafields give its chat embed.
                allowed_origins=[shop_origin(DEMO_SHOP)],
                fields_set={"name", "persona", "instructions", "greeting", "allowed_origins"},
            ),
        )

    if await scope.count(scope.select(Item)) == 0:
        created = True
        for question, answer in DEMO_FAQ:
            await create_qa(scope, question=question, answer=answer, collection="faq")

    shop = await session.scalar(select(ShopifyShop).where(ShopifyShop.shop_domain == DEMO_SHOP))
    if shop is None:
        created = True
        # The demo organisation is the Shopify demo shop's: `serve --shopify-simulator` opens
        # the app for it, and the platform connects this row (token exchange) and syncs the
        # shop's catalogue, which the demo assistant then answers from.
        shop = ShopifyShop(
            organisation_id=organisation.id,
            shop_domain=DEMO_SHOP,
            status=ShopStatus.INSTALLED,
        )
        session.add(shop)
    if shop.subscription_status is None:
        # The demo's history alone begins 6 to 17 conversations a day: on the free plan's
        # 50 a month the demo assistant would leave every new one to the team from about
        # the fourth day of each month. A demo shop an earlier version seeded has no plan.
        shop.plan_name, shop.subscription_status = DEMO_PLAN.name, billing.ACTIVE

    number = await session.scalar(
        select(WhatsAppNumber).where(WhatsAppNumber.phone_number_id == DEMO_PHONE_NUMBER_ID)
    )
    if number is None:
        created = True
        await create_number(
            scope,
            caller,
            NumberChanges(
                assistant_id=assistant.id,
                phone_number_id=DEMO_PHONE_NUMBER_ID,
                waba_id=DEMO_WABA_ID,
                display_phone_number=DEMO_DISPLAY_PHONE_NUMBER,
                access_token=DEMO_ACCESS_TOKEN,
                fields_set={
                    "assistant_id",
                    "phone_number_id",
                    "waba_id",
                    "display_phone_number",
                    "access_token",
                },
            ),
        )
    return DemoSeed(organisation_id=str(organisation.id), created=created)
